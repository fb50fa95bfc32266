package ingest

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ratioFloor is the output size below which MaxRatio is not checked: a
// small report compresses well and costs nothing.
const ratioFloor = 1 << 20

// corruptError is a damaged container: bad gzip or zip data, a checksum
// mismatch, broken base64.
type corruptError struct {
	what string
	err  error
}

func (e *corruptError) Error() string { return e.what + ": " + e.err.Error() }
func (e *corruptError) Unwrap() error { return e.err }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// decompReader caps a decompressor's output at MaxDecompressed and at
// MaxRatio times the compressed bytes consumed (or declared, for a zip
// member), and remembers the decompressor's first error so that a broken
// stream is reported as such rather than as the broken XML it yields.
type decompReader struct {
	r          io.Reader
	compressed func() int64
	lim        Limits
	what       string
	out        int64
	err        error // sticky: a limit or corruption
}

func (d *decompReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	d.out += int64(n)
	if d.out > d.lim.MaxDecompressed {
		d.err = &limitError{msg: fmt.Sprintf("%s decompresses to more than %s", d.what, size(d.lim.MaxDecompressed))}
		return 0, d.err
	}
	if d.lim.MaxRatio > 0 && d.out > ratioFloor {
		if c := max(d.compressed(), 1); d.out > d.lim.MaxRatio*c {
			d.err = &limitError{msg: fmt.Sprintf("%s decompresses more than %d:1 (%d bytes from %d)", d.what, d.lim.MaxRatio, d.out, c)}
			return 0, d.err
		}
	}
	if err != nil && err != io.EOF {
		var le *limitError
		if !errors.As(err, &le) {
			err = &corruptError{what: d.what, err: err}
		}
		d.err = err
	}
	return n, err
}

// gzipStream reads a gzip file member by member: concatenated members are
// read as one stream (RFC 1952 §2.2), and what follows the last member is
// skipped and measured instead of failing the read as Go's multistream
// reader does. Mimecast's reports end with a stray CRLF after the gzip data.
type gzipStream struct {
	br       *bufio.Reader
	z        *gzip.Reader
	trailing int64 // bytes after the last member
	junk     bool  // some of them not white space or NUL
	done     bool
}

func newGzipStream(r io.Reader) (*gzipStream, error) {
	br := bufio.NewReader(r)
	z, err := gzip.NewReader(br)
	if err != nil {
		return nil, &corruptError{what: "gzip", err: err}
	}
	z.Multistream(false)
	return &gzipStream{br: br, z: z}, nil
}

func (g *gzipStream) Read(p []byte) (int, error) {
	for {
		if g.done {
			return 0, io.EOF
		}
		n, err := g.z.Read(p)
		if err != io.EOF {
			return n, err
		}
		// End of a member: another one, or the end.
		if b, _ := g.br.Peek(2); len(b) == 2 && b[0] == 0x1f && b[1] == 0x8b {
			if err := g.z.Reset(g.br); err != nil {
				return n, err
			}
			g.z.Multistream(false)
		} else {
			g.done = true
			g.skipTrailing()
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (g *gzipStream) skipTrailing() {
	buf := make([]byte, 4096)
	for {
		k, err := g.br.Read(buf)
		g.trailing += int64(k)
		for _, c := range buf[:k] {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != 0 {
				g.junk = true
			}
		}
		if err != nil {
			return
		}
	}
}

// aggregateFrom parses XML from a decompressor, then reads the rest of
// the stream so that checksums are verified: a report whose container is
// damaged is refused even when its XML happened to parse.
func aggregateFrom(dr *decompReader, lim Limits) (*Aggregate, error) {
	a, err := parseAggregate(dr, lim)
	if err == nil {
		if _, derr := io.Copy(io.Discard, dr); derr != nil {
			return nil, classify(derr, 0)
		}
		return a, nil
	}
	if dr.err != nil {
		// The container's fault, not the XML's.
		return nil, classify(dr.err, 0)
	}
	return nil, err
}

// gunzipAggregate reads a gzip-compressed report.
func gunzipAggregate(r io.Reader, lim Limits) (*Aggregate, error) {
	cin := &countingReader{r: &cappedReader{r: r, n: lim.MaxCompressed, what: "compressed input"}}
	g, err := newGzipStream(cin)
	if err != nil {
		return nil, classify(err, 0)
	}
	dr := &decompReader{r: g, compressed: func() int64 { return cin.n }, lim: lim, what: "gzip data"}
	a, err := aggregateFrom(dr, lim)
	if err != nil {
		return nil, err
	}
	if g.junk {
		a.Warnings = append(a.Warnings, fmt.Sprintf("%d bytes after the gzip data ignored", g.trailing))
	}
	return a, nil
}

// readAllCapped reads r whole, refusing more than n bytes.
func readAllCapped(r io.Reader, n int64, what string) ([]byte, error) {
	data, err := io.ReadAll(&cappedReader{r: r, n: n, what: what})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// zipEntries reads the entry count from a zip's end-of-central-directory
// record, before archive/zip builds the directory: a zip claiming millions
// of entries is refused without allocating them. It returns -1 when no
// record is found (archive/zip then reports the damage).
func zipEntries(data []byte) int {
	const eocdLen = 22
	if len(data) < eocdLen {
		return -1
	}
	lo := max(len(data)-eocdLen-0xffff, 0)
	for i := len(data) - eocdLen; i >= lo; i-- {
		if data[i] == 'P' && data[i+1] == 'K' && data[i+2] == 5 && data[i+3] == 6 {
			return int(binary.LittleEndian.Uint16(data[i+10:]))
		}
	}
	return -1
}

// zipAggregates reads each .xml member of a zip archive held in data and
// returns one item per member (src:member), or one refusal for the whole
// archive.
func (w *walker) zipAggregates(data []byte, src string, depth int) error {
	if depth > w.lim.MaxDepth {
		return w.refuse(src, newErr(ErrLimit, 0, "zip nested deeper than %d", w.lim.MaxDepth))
	}
	if n := zipEntries(data); n > w.lim.MaxFiles {
		return w.refuse(src, newErr(ErrLimit, 0, "zip holds %d entries, more than %d", n, w.lim.MaxFiles))
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return w.refuse(src, &Error{Kind: ErrCorrupt, Msg: "zip: " + err.Error(), Err: err})
	}
	if len(zr.File) > w.lim.MaxFiles {
		return w.refuse(src, newErr(ErrLimit, 0, "zip holds %d entries, more than %d", len(zr.File), w.lim.MaxFiles))
	}
	var others []string
	found := 0
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		name := sanitize(f.Name)
		if !strings.EqualFold(path.Ext(f.Name), ".xml") {
			others = append(others, name)
			continue
		}
		found++
		a, err := w.zipMember(f)
		if err := w.emit(src+":"+name, a, nil, err); err != nil {
			return err
		}
	}
	if found == 0 {
		msg := "zip holds no .xml file"
		if len(others) > 0 {
			msg += " (it holds " + strings.Join(others[:min(len(others), 5)], ", ") + ")"
		}
		return w.refuse(src, newErr(ErrNotReport, 0, "%s", msg))
	}
	return nil
}

func (w *walker) zipMember(f *zip.File) (*Aggregate, error) {
	lim := w.lim
	if f.Flags&1 != 0 {
		return nil, newErr(ErrUnsupported, 0, "encrypted zip member")
	}
	if f.CompressedSize64 > uint64(lim.MaxCompressed) {
		return nil, newErr(ErrLimit, 0, "zip member declares %d compressed bytes, more than %s", f.CompressedSize64, size(lim.MaxCompressed))
	}
	if f.UncompressedSize64 > uint64(lim.MaxDecompressed) {
		return nil, newErr(ErrLimit, 0, "zip member declares %d bytes, more than %s", f.UncompressedSize64, size(lim.MaxDecompressed))
	}
	comp := max(int64(f.CompressedSize64), 1)
	if lim.MaxRatio > 0 && f.UncompressedSize64 > ratioFloor && int64(f.UncompressedSize64) > lim.MaxRatio*comp {
		return nil, newErr(ErrLimit, 0, "zip member declares a ratio over %d:1 (%d bytes from %d)", lim.MaxRatio, f.UncompressedSize64, comp)
	}
	rc, err := f.Open()
	if err != nil {
		if errors.Is(err, zip.ErrAlgorithm) {
			return nil, newErr(ErrUnsupported, 0, "zip compression method %d", f.Method)
		}
		return nil, &Error{Kind: ErrCorrupt, Msg: "zip: " + err.Error(), Err: err}
	}
	defer rc.Close()
	// archive/zip reads at most the declared compressed size and fails
	// when the output passes the declared size (or its CRC is wrong); the
	// caps hold whatever the header says.
	dr := &decompReader{r: rc, compressed: func() int64 { return comp }, lim: lim, what: "zip member"}
	a, err := aggregateFrom(dr, lim)
	if err != nil && errors.Is(err, zip.ErrFormat) {
		return nil, &Error{Kind: ErrCorrupt, Err: err,
			Msg: fmt.Sprintf("zip member produces more than the %d bytes it declares, or is damaged", f.UncompressedSize64)}
	}
	return a, err
}

// kind is what an input looks like from its first bytes.
type kind int

const (
	kindUnknown kind = iota
	kindEmpty
	kindGzip
	kindZip
	kindXML
	kindMbox
	kindMessage
)

// sniff tells what head, the first bytes of an input, starts. complete
// says head is the whole input.
func sniff(head []byte, complete bool) kind {
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		return kindGzip
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		return kindZip
	}
	if bytes.HasPrefix(head, []byte("From ")) {
		return kindMbox
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(t) == 0 {
		if complete {
			return kindEmpty
		}
		return kindXML // a lot of white space: let the XML reader decide
	}
	if t[0] == '<' || bytes.HasPrefix(head, []byte("\xff\xfe<\x00")) || bytes.HasPrefix(head, []byte("\xfe\xff\x00<")) {
		return kindXML // UTF-8, or UTF-16 with a byte order mark
	}
	if isHeaderLine(head) {
		return kindMessage
	}
	return kindUnknown
}

// isHeaderLine reports whether b starts with an RFC 5322 field name and a
// colon.
func isHeaderLine(b []byte) bool {
	for i, c := range b {
		if c == ':' {
			return i > 0
		}
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return false
}

// looksXML reports whether a MIME part's content is an XML document that
// could be a report, when neither its name nor its type say so.
func looksXML(head []byte) bool {
	if bytes.HasPrefix(head, []byte("\xff\xfe<\x00")) || bytes.HasPrefix(head, []byte("\xfe\xff\x00<")) {
		return true
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	return bytes.HasPrefix(t, []byte("<?xml")) || bytes.HasPrefix(t, []byte("<feedback"))
}
