package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Walk reads any supported input and calls fn for each report found or
// refused, in a stable order. path may be:
//   - a file, recognised by its content, not its name: XML (.xml), gzip
//     (.xml.gz, .gz), zip (.zip), an mbox (starts with a From_ line), a
//     mail message (.eml; a maildir file); anything else yields an Item
//     with ErrNotReport, an empty file one with ErrEmpty;
//   - a directory: every file in the tree, in lexical order. Maildirs
//     (folders with cur/ and new/) are read from cur/ and new/ only, their
//     tmp/ and index files skipped; hidden files and hidden folders that
//     are not Maildir++ folders are skipped.
//
// Walk returns fn's error, which stops it, or an error reaching path
// itself; what is wrong inside an input becomes an Item.
func Walk(path string, lim Limits, fn func(Item) error) error {
	w := &walker{lim: lim.withDefaults(), fn: fn}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		if !st.Mode().IsRegular() {
			return w.refuse(path, newErr(ErrNotReport, 0, "not a regular file"))
		}
		return w.file(path)
	}
	// WalkDir does not follow a symbolic link at the root: walk its
	// target, naming sources under the path as given.
	root := path
	if lst, err := os.Lstat(path); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
		if root, err = filepath.EvalSymlinks(path); err != nil {
			return err
		}
	}
	name := func(p string) string { return path + strings.TrimPrefix(p, root) }
	md := map[string]bool{}
	isMaildir := func(dir string) bool {
		v, ok := md[dir]
		if !ok {
			v = isDir(filepath.Join(dir, "cur")) && isDir(filepath.Join(dir, "new"))
			md[dir] = v
		}
		return v
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			if rerr := w.refuse(name(p), &Error{Kind: ErrIO, Msg: err.Error(), Err: err}); rerr != nil {
				return rerr
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		base := d.Name()
		if d.IsDir() {
			if p == root {
				return nil
			}
			if strings.HasPrefix(base, ".") && !isMaildir(p) {
				return fs.SkipDir
			}
			if base == "tmp" && isMaildir(filepath.Dir(p)) {
				return fs.SkipDir // deliveries in progress
			}
			return nil
		}
		if strings.HasPrefix(base, ".") || isMaildir(filepath.Dir(p)) {
			return nil // hidden, or a maildir's own files (dovecot-uidlist...)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		return w.fileAs(p, name(p))
	})
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// file reads one file of any supported kind.
func (w *walker) file(p string) error { return w.fileAs(p, p) }

// fileAs reads the file at path, naming it src in items.
func (w *walker) fileAs(path, src string) error {
	f, err := os.Open(path)
	if err != nil {
		return w.refuse(src, &Error{Kind: ErrIO, Msg: err.Error(), Err: err})
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, err := br.Peek(512)
	if len(head) == 0 && err != nil && err != io.EOF {
		return w.refuse(src, &Error{Kind: ErrIO, Msg: err.Error(), Err: err})
	}
	switch sniff(head, err != nil) {
	case kindEmpty:
		return w.refuse(src, newErr(ErrEmpty, 0, "empty file"))
	case kindGzip:
		return w.gzip(br, src, 0)
	case kindZip:
		return w.zip(br, src, 0)
	case kindXML:
		a, err := parseAggregate(&cappedReader{r: br, n: w.lim.MaxDecompressed, what: "XML document"}, w.lim)
		return w.emit(src, a, nil, err)
	case kindMbox:
		return w.mbox(br, src, 0)
	case kindMessage:
		return w.message(br, src, 0)
	}
	return w.refuse(src, newErr(ErrNotReport, 0, "unrecognised content: not XML, gzip, zip, an mbox nor a mail message"))
}

// fromLine matches an mbox From_ line: "From sender date", the date
// holding a time. Body lines that begin with "From " are escaped as
// ">From " by mbox writers; requiring the time guards against those that
// are not.
var fromLine = regexp.MustCompile(`^From \S+ +\S.*\d\d?:\d\d`)

// mbox reads an mbox (mboxo or mboxrd; LF or CRLF) and parses each message
// as src#n, n from 1. A message larger than MaxMessage is refused and
// skipped.
func (w *walker) mbox(br *bufio.Reader, src string, depth int) error {
	depth++
	if depth > w.lim.MaxDepth {
		return w.refuse(src, newErr(ErrLimit, 0, "mbox nested deeper than %d", w.lim.MaxDepth))
	}
	var (
		buf      bytes.Buffer
		n        int
		inMsg    bool
		over     bool
		atStart  = true
		skipping bool // the rest of a long From_ line
	)
	flush := func() error {
		if !inMsg {
			return nil
		}
		msrc := fmt.Sprintf("%s#%d", src, n)
		defer buf.Reset()
		if over {
			return w.refuse(msrc, newErr(ErrLimit, 0, "message larger than %s", size(w.lim.MaxMessage)))
		}
		return w.message(bytes.NewReader(buf.Bytes()), msrc, depth)
	}
	for {
		chunk, err := br.ReadSlice('\n')
		complete := err == nil
		if len(chunk) > 0 {
			switch {
			case atStart && bytes.HasPrefix(chunk, []byte("From ")) && (n == 0 || fromLine.Match(chunk)):
				// The first line is a From_ line whatever follows
				// "From " (sniff saw it); later ones must look like one.
				if ferr := flush(); ferr != nil {
					return ferr
				}
				n++
				inMsg, over = true, false
				skipping = !complete
			case skipping:
				skipping = !complete
			case inMsg && !over:
				line := chunk
				if atStart && line[0] == '>' {
					// mboxrd: ">From " and ">>From " lose one '>'.
					if t := bytes.TrimLeft(line, ">"); bytes.HasPrefix(t, []byte("From ")) {
						line = line[1:]
					}
				}
				if int64(buf.Len()+len(line)) > w.lim.MaxMessage {
					over = true
					buf.Reset()
				} else {
					buf.Write(line)
				}
			}
			atStart = complete
		}
		if err == io.EOF {
			return flush()
		}
		if err != nil && err != bufio.ErrBufferFull {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return w.refuse(src, &Error{Kind: ErrIO, Msg: err.Error(), Err: err})
		}
	}
}
