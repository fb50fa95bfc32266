package aggregate

import (
	"compress/gzip"
	"crypto/rand"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// FileName returns the name of a gzip-compressed report attachment, the
// same under RFC 7489 §7.2.1.1 and RFC 9990:
//
//	receiver "!" policy-domain "!" begin-timestamp "!" end-timestamp [ "!" unique-id ] ".xml.gz"
//
// The domains are written as A-labels, lowercased, without a trailing dot;
// a byte that a domain-name cannot hold ("!" and "/" included: the policy
// domain comes from DNS and may hold anything) becomes "-". unique-id keeps
// only its ASCII letters and digits (1*(ALPHA / DIGIT)) and is left out when
// none remain. A re-sent report must reuse the name (RFC 9990), so the name
// depends on nothing but the arguments. f is accepted for symmetry: the two
// formats name files alike.
func FileName(f Format, receiver, policyDomain string, begin, end time.Time, uniqueID string) string {
	_ = f
	var b strings.Builder
	b.WriteString(fileDomain(receiver))
	b.WriteByte('!')
	b.WriteString(fileDomain(policyDomain))
	b.WriteByte('!')
	b.WriteString(strconv.FormatInt(begin.Unix(), 10))
	b.WriteByte('!')
	b.WriteString(strconv.FormatInt(end.Unix(), 10))
	if id := alnum(uniqueID); id != "" {
		b.WriteByte('!')
		b.WriteString(id)
	}
	b.WriteString(".xml.gz")
	return b.String()
}

// fileDomain makes a domain safe for the file name grammar (RFC 6376
// domain-name: letters, digits, hyphens and dots).
func fileDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if a, err := idna.ToASCII(d); err == nil {
		d = a
	}
	d = strings.ToLower(d)
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '-'
	}, d)
}

func alnum(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return -1
	}, s)
}

// NewReportID returns a random report ID of 26 letters and digits (128
// bits). Being alphanumeric, it is a valid report_id and a valid file name
// unique-id, and RFC 9990 wants the two to be identical.
func NewReportID() string {
	return rand.Text()
}

// NewGzipWriter returns a writer that compresses a report attachment into
// w, at the best compression (the size limits apply to the compressed
// size). The gzip header carries the uncompressed file's name (name without
// its ".gz"; bytes outside printable ASCII become "_", as the header must be
// Latin-1) and mtime, for which the report's end is a good choice: the same
// report then compresses to the same bytes every time.
func NewGzipWriter(w io.Writer, name string, mtime time.Time) *gzip.Writer {
	zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression) // the level is valid
	zw.Name = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '_'
		}
		return r
	}, strings.TrimSuffix(name, ".gz"))
	zw.ModTime = mtime
	return zw
}

// WriteGzip writes the report gzip-compressed to w, with the header of
// NewGzipWriter (name is the attachment's FileName; mtime is m.End), and
// returns the number of compressed bytes written: what Fits and Plan take.
func WriteGzip(w io.Writer, f Format, m Metadata, p Policy, name string, next func() (Record, bool, error)) (int64, error) {
	cw := &countingWriter{w: w}
	zw := NewGzipWriter(cw, name, m.End)
	if err := Write(zw, f, m, p, next); err != nil {
		return cw.n, err
	}
	err := zw.Close()
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
