package ingest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits bound what one input may cost. A report that crosses one is refused
// whole, with ErrLimit; nothing of it is returned. A zero field takes its
// DefaultLimits value, so Limits{} is DefaultLimits().
type Limits struct {
	// MaxCompressed is the largest compressed or encoded input accepted: a
	// .gz or .zip file, a compressed attachment (after base64), the
	// compressed size of a zip member.
	MaxCompressed int64
	// MaxDecompressed is the largest XML document accepted, decompressed or
	// read as it is; it is checked against a zip member's declared size
	// before reading and against the bytes actually produced while reading.
	MaxDecompressed int64
	// MaxRatio is the largest decompressed:compressed ratio accepted once
	// the output passes 1 MiB (small documents compress very well and are
	// harmless). Deflate cannot go much past 1032:1, so the absolute caps
	// do most of the work; the ratio stops a bomb early. Negative turns it
	// off.
	MaxRatio int64
	// MaxRecords is the most <record> elements one report may hold.
	MaxRecords int
	// MaxFiles is the most entries a zip archive may hold (all entries,
	// not only the .xml ones that are read).
	MaxFiles int
	// MaxDepth bounds nesting: each mbox or maildir message, MIME
	// multipart, attached message, zip and gzip layer counts one.
	MaxDepth int
	// MaxMessage is the largest single message accepted (an .eml file, a
	// message in an mbox or a maildir).
	MaxMessage int64
	// MaxHeaderText is how much of a failure report's original header
	// section is kept; the rest is cut and Failure.HeadersTruncated set.
	MaxHeaderText int
}

// DefaultLimits returns the limits the import command uses. The largest
// real report in the reference set, 2,286 records and 909 KB, needs a
// twentieth of them; its gzip ratio is 102:1, which is why MaxRatio is not
// 100.
func DefaultLimits() Limits {
	return Limits{
		MaxCompressed:   10 << 20,
		MaxDecompressed: 64 << 20,
		MaxRatio:        250,
		MaxRecords:      200000,
		MaxFiles:        16,
		MaxDepth:        10,
		MaxMessage:      32 << 20,
		MaxHeaderText:   64 << 10,
	}
}

// withDefaults fills the zero fields of l from DefaultLimits, so that a
// caller who sets one limit does not lift the others; a negative MaxRatio
// becomes 0, no ratio check.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxCompressed <= 0 {
		l.MaxCompressed = d.MaxCompressed
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = d.MaxDecompressed
	}
	switch {
	case l.MaxRatio == 0:
		l.MaxRatio = d.MaxRatio
	case l.MaxRatio < 0:
		l.MaxRatio = 0
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = d.MaxRecords
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxMessage <= 0 {
		l.MaxMessage = d.MaxMessage
	}
	if l.MaxHeaderText <= 0 {
		l.MaxHeaderText = d.MaxHeaderText
	}
	return l
}

// The classes of refusal. Every error this package reports for an input
// wraps exactly one of them (test with errors.Is).
var (
	// ErrEmpty: the input holds nothing (zero bytes or only white space).
	ErrEmpty = errors.New("empty")
	// ErrNotWellFormed: the XML is broken; the error carries the line.
	ErrNotWellFormed = errors.New("not well-formed XML")
	// ErrDTD: the XML has a DOCTYPE (or another <!...> declaration).
	// Reports have no use for one, and refusing it outright rules out
	// external entities (XXE) and entity expansion (billion laughs).
	ErrDTD = errors.New("DTD not allowed")
	// ErrInvalid: well-formed XML that is not a usable report: no
	// report_id, a date range that ends before it begins, a negative
	// count, a source_ip that is no address, an ambiguous duplicate.
	ErrInvalid = errors.New("invalid report")
	// ErrLimit: a Limits cap was crossed.
	ErrLimit = errors.New("limit exceeded")
	// ErrCorrupt: a container is damaged (bad gzip or zip data, a CRC
	// mismatch, broken base64 or MIME).
	ErrCorrupt = errors.New("corrupt data")
	// ErrUnsupported: a well-formed input in a form this package does not
	// read (an unknown XML encoding, a zip compression method).
	ErrUnsupported = errors.New("unsupported")
	// ErrNotReport: the input is no DMARC report: a message with neither
	// an aggregate attachment nor an RFC 6591 feedback-report part (Exim's
	// plain-text "forensic" notice among them), an ARF report of another
	// type, XML whose root is not <feedback>, a file of unknown content.
	ErrNotReport = errors.New("not a DMARC report")
	// ErrIO: the input could not be read.
	ErrIO = errors.New("read error")
)

// Error is why an input was refused: where (Source, Line), which class
// (Kind, one of the Err variables) and the detail.
type Error struct {
	Source string // as Item.Source; "" when the caller holds the name
	Line   int    // 1-based line in the XML document, 0 when none applies
	Kind   error
	Msg    string
	Err    error // the underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.Error())
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Unwrap returns the class and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

func newErr(kind error, line int, format string, args ...any) *Error {
	return &Error{Kind: kind, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// withSource returns err with its Source set to src (prefixing what a
// nested step already named), wrapping foreign errors as ErrIO.
func withSource(err error, src string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		switch {
		case c.Source == "":
			c.Source = src
		case src != "":
			c.Source = src + ":" + c.Source
		}
		return &c
	}
	return &Error{Source: src, Kind: ErrIO, Msg: err.Error(), Err: err}
}

// limitError is what the capped readers return; the parser turns it into
// an *Error of class ErrLimit.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// warnings collects what a report had that the RFC does not allow but that
// did not make it unusable. It keeps the first maxWarnings and counts the
// rest, so that a hostile report cannot grow it without bound.
type warnings struct {
	list    []string
	dropped int
}

const maxWarnings = 50

func (w *warnings) add(line int, format string, args ...any) {
	if len(w.list) >= maxWarnings {
		w.dropped++
		return
	}
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = "line " + strconv.Itoa(line) + ": " + msg
	}
	w.list = append(w.list, msg)
}

func (w *warnings) result() []string {
	if w.dropped > 0 {
		return append(w.list, fmt.Sprintf("and %d more warnings", w.dropped))
	}
	return w.list
}
