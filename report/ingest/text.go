package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
)

// xmlInput prepares a document for encoding/xml: it strips a UTF-8 byte
// order mark, decodes a declared non-UTF-8 encoding to UTF-8, and replaces
// what XML 1.0 cannot carry (invalid UTF-8, C0 control characters other
// than tab, CR and LF, U+FFFE and U+FFFF) with U+FFFD, counting the
// replacements and the line of the first.
type xmlInput struct {
	r          io.Reader // what the decoder reads
	rep        *repairReader
	encoding   string // the declared encoding, lower-cased, "" when none
	empty      bool   // nothing but white space in the first bytes, or nothing
	mislabeled bool   // declares UTF-16 or UTF-32 but is written in 8 bits
}

var encodingDecl = regexp.MustCompile(`^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']`)

func prepareXML(r io.Reader) (*xmlInput, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, err := br.Peek(1024)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, err
	}
	in := &xmlInput{}
	if len(bytes.TrimSpace(head)) == 0 {
		// Perhaps only the first KiB is white space: look further.
		if len(head) < 1024 {
			in.empty = true
			return in, nil
		}
	}
	switch {
	case bytes.HasPrefix(head, []byte("\xef\xbb\xbf")):
		_, _ = br.Discard(3)
		head = head[3:]
	case bytes.HasPrefix(head, []byte("\xff\xfe")) || bytes.HasPrefix(head, []byte("\xfe\xff")):
		// UTF-16 with a byte order mark: decode to UTF-8 first, then
		// read the declaration from the decoded text.
		dec := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder().Reader(br)
		br = bufio.NewReaderSize(dec, 4096)
		head, _ = br.Peek(1024)
		in.encoding = "utf-16"
	}
	var src io.Reader = br
	if m := encodingDecl.FindSubmatch(head); m != nil && in.encoding == "" {
		in.encoding = strings.ToLower(string(m[1]))
		switch {
		case isUTF8Label(in.encoding):
		case strings.HasPrefix(in.encoding, "utf-16") || strings.HasPrefix(in.encoding, "utf-32") || strings.HasPrefix(in.encoding, "ucs"):
			// The declaration was just read as 8-bit text: the
			// label is wrong, not the bytes.
			in.mislabeled = true
		default:
			enc, err := ianaindex.IANA.Encoding(in.encoding)
			if err != nil || enc == nil {
				return nil, newErr(ErrUnsupported, 1, "encoding %q", in.encoding)
			}
			src = enc.NewDecoder().Reader(br)
		}
	}
	in.rep = &repairReader{r: src, line: 1}
	in.r = in.rep
	return in, nil
}

// isUTF8Label reports whether an XML encoding label needs no decoding:
// UTF-8 itself or its ASCII subset (bytes beyond ASCII in a document that
// claims ASCII are read as UTF-8 and repaired where invalid).
func isUTF8Label(l string) bool {
	switch strings.ToLower(l) {
	case "utf-8", "utf8", "us-ascii", "ascii", "iso646-us", "ansi_x3.4-1968":
		return true
	}
	return false
}

// charsetReader is the decoder's CharsetReader: prepareXML has already
// decoded the declared encoding, so any label it accepted reads as it is.
func (in *xmlInput) charsetReader(label string, r io.Reader) (io.Reader, error) {
	l := strings.ToLower(label)
	if isUTF8Label(l) || l == in.encoding || (in.encoding == "utf-16" && strings.HasPrefix(l, "utf-16")) {
		return r, nil
	}
	return nil, fmt.Errorf("encoding %q declared past the start of the document", label)
}

// repairReader replaces bytes that XML 1.0 cannot carry with U+FFFD (see
// xmlInput). A multi-byte sequence split across reads is held back until
// it is complete. Clean input (nearly all) is handed out of its buffer
// without a copy.
type repairReader struct {
	r       io.Reader
	buf     []byte // the current chunk
	held    [utf8.UTFMax]byte
	nheld   int
	fixed   []byte // repaired output, reused
	out     []byte // output not yet returned: a slice of buf or fixed
	err     error
	line    int // current line
	bad     int // replacements made
	badLine int // line of the first
}

const replacement = "\uFFFD"

func (rr *repairReader) Read(p []byte) (int, error) {
	for len(rr.out) == 0 {
		if rr.err != nil {
			return 0, rr.err
		}
		rr.fill()
	}
	n := copy(p, rr.out)
	rr.out = rr.out[n:]
	return n, nil
}

// fill reads the next chunk; it runs only when out is empty, so buf and
// fixed may be overwritten.
func (rr *repairReader) fill() {
	const chunk = 32 << 10
	if rr.buf == nil {
		rr.buf = make([]byte, chunk+utf8.UTFMax)
	}
	copy(rr.buf, rr.held[:rr.nheld])
	n, err := rr.r.Read(rr.buf[rr.nheld : rr.nheld+chunk])
	data := rr.buf[:rr.nheld+n]
	rr.nheld = 0
	if err != nil {
		rr.err = err
	}
	i, clean := 0, true
	for i < len(data) {
		c := data[i]
		if c < utf8.RuneSelf {
			if c == '\n' {
				rr.line++
			} else if c < 0x20 && c != '\t' && c != '\r' {
				rr.replace(data, &clean, i)
				i++
				continue
			}
			if !clean {
				rr.fixed = append(rr.fixed, c)
			}
			i++
			continue
		}
		if !utf8.FullRune(data[i:]) && rr.err == nil {
			rr.nheld = copy(rr.held[:], data[i:])
			break // complete it with the next read
		}
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size == 1) || r == 0xFFFE || r == 0xFFFF {
			rr.replace(data, &clean, i)
			i += size
			continue
		}
		if !clean {
			rr.fixed = append(rr.fixed, data[i:i+size]...)
		}
		i += size
	}
	if clean {
		rr.out = data[:i]
	} else {
		rr.out = rr.fixed
	}
}

func (rr *repairReader) replace(data []byte, clean *bool, i int) {
	if *clean {
		*clean = false
		rr.fixed = append(rr.fixed[:0], data[:i]...)
	}
	if rr.bad == 0 {
		rr.badLine = rr.line
	}
	rr.bad++
	rr.fixed = append(rr.fixed, replacement...)
}

// sanitize makes s valid UTF-8 without control characters (tab kept),
// for text taken from message headers.
func sanitize(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || (c < 0x20 && c != '\t') || c == 0x7f {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError, r < 0x20 && r != '\t', r == 0x7f:
			b.WriteString(replacement)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
