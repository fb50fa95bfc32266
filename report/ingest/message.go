package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Item is one report found, or refused, in an input.
type Item struct {
	// Source says where: the file, then each layer inside it joined by
	// ':' (an attachment's file name, or "part2.1" by MIME position when
	// it has none; a zip member's name), a message of an mbox as #n:
	// "reports.zip:google.com!example.com!1!2.xml",
	// "inbox.mbox#12:report.xml.gz". For ParseMessage it is relative to
	// the message, "" being the message itself.
	Source string
	// Exactly one of the three is set.
	Aggregate *Aggregate
	Failure   *Failure
	// Err is why the input was refused: an *Error whose Kind is one of the
	// Err variables, with the line for XML. Nothing of a refused report is
	// in Aggregate or Failure.
	Err error
}

// walker carries the limits and the callback through the layers. Its
// methods return only the callback's errors, which end the walk; whatever
// is wrong with the input becomes an Item.
type walker struct {
	lim Limits
	fn  func(Item) error
}

func (w *walker) emit(src string, a *Aggregate, f *Failure, err error) error {
	if err != nil {
		return w.fn(Item{Source: src, Err: withSource(err, src)})
	}
	if a != nil {
		return w.fn(Item{Source: src, Aggregate: a})
	}
	return w.fn(Item{Source: src, Failure: f})
}

func (w *walker) refuse(src string, err error) error {
	return w.emit(src, nil, nil, err)
}

func join(src, name string) string {
	if src == "" {
		return name
	}
	return src + ":" + name
}

// maxParts bounds the MIME parts read in one multipart.
const maxParts = 1000

// ParseMessage reads one RFC 5322 message (a leading mbox From_ line is
// skipped) and calls fn for each report in it: each aggregate report
// attached (gzip, zip or XML, recognised by content, whatever the content
// type or name says), each ARF failure report (a message/feedback-report
// part with its original message or headers part), and reports in
// attached (forwarded) messages. A message holding none yields one Item
// with ErrNotReport. It returns fn's error, which stops it; problems with
// the message are Items.
func ParseMessage(r io.Reader, lim Limits, fn func(Item) error) error {
	w := &walker{lim: lim.withDefaults(), fn: fn}
	return w.message(r, "", 0)
}

// msgCtx is one message being read: its header (for a failure report's
// Reporter), how many items it yielded, and why it might hold none.
type msgCtx struct {
	src     string
	header  *textproto.Header
	emitted int
	reason  string
}

// counting wraps fn to count the items of a message.
func (w *walker) counting(mc *msgCtx) *walker {
	return &walker{lim: w.lim, fn: func(it Item) error {
		mc.emitted++
		return w.fn(it)
	}}
}

// message reads a whole message at depth (the layers above it).
func (w *walker) message(r io.Reader, src string, depth int) error {
	depth++
	if depth > w.lim.MaxDepth {
		return w.refuse(src, newErr(ErrLimit, 0, "message nested deeper than %d", w.lim.MaxDepth))
	}
	capped := &cappedReader{r: r, n: w.lim.MaxMessage, what: "message"}
	br := bufio.NewReader(capped)
	if head, _ := br.Peek(5); string(head) == "From " {
		if _, err := br.ReadSlice('\n'); err != nil && err != bufio.ErrBufferFull {
			return w.refuse(src, newErr(ErrEmpty, 0, "only an mbox From_ line"))
		}
	}
	if head, err := br.Peek(1); len(head) == 0 {
		if err != nil && err != io.EOF {
			return w.refuse(src, classify(err, 0))
		}
		return w.refuse(src, newErr(ErrEmpty, 0, "empty message"))
	}
	h, err := textproto.ReadHeader(br)
	if err != nil {
		if ce := capErr(capped); ce != nil {
			return w.refuse(src, ce)
		}
		return w.refuse(src, &Error{Kind: ErrCorrupt, Msg: "message header: " + err.Error(), Err: err})
	}
	mc := &msgCtx{src: src, header: &h}
	cw := w.counting(mc)
	if err := cw.entity(message.Header{Header: h}, br, mc, src, "", depth); err != nil {
		return err
	}
	if mc.emitted > 0 {
		return nil
	}
	if ce := capErr(capped); ce != nil {
		return w.refuse(src, ce)
	}
	reason := mc.reason
	if reason == "" {
		reason = "no aggregate report attached and no message/feedback-report part"
	}
	return w.refuse(src, newErr(ErrNotReport, 0, "%s", reason))
}

func capErr(c *cappedReader) error {
	if c.err != nil {
		return classify(c.err, 0)
	}
	return nil
}

// decodeBody undoes a part's Content-Transfer-Encoding (not its charset:
// an XML document declares its own) and turns decoding errors into
// corruptErrors.
func decodeBody(h message.Header, r io.Reader) io.Reader {
	hh := h.Copy()
	hh.Del("Content-Type")
	e, err := message.New(hh, r)
	if err != nil && e == nil {
		return &errReader{r: r}
	}
	return &errReader{r: e.Body}
}

type errReader struct{ r io.Reader }

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		var le *limitError
		if !errors.As(err, &le) {
			err = &corruptError{what: "MIME part", err: err}
		}
	}
	return n, err
}

// entity reads one MIME entity. pos is its MIME position ("2.1").
func (w *walker) entity(h message.Header, body io.Reader, mc *msgCtx, src, pos string, depth int) error {
	mt, params := mediaType(h, "Content-Type")
	if mt == "" {
		mt = "text/plain"
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		return w.multipart(mt, params, body, mc, src, pos, depth+1)
	case mt == "message/rfc822" || mt == "message/global":
		// A forwarded message: its reports count as this message's.
		return w.forwarded(decodeBody(h, body), mc, join(src, partName(h, params, pos)), depth)
	case mt == "message/feedback-report":
		// A bare feedback report, outside a multipart.
		data, err := readAllCapped(decodeBody(h, body), maxARFPart, "feedback report part")
		return w.feedback(data, err, nil, false, mc, src)
	}
	return w.leaf(h, mt, params, body, src, pos, depth)
}

// forwarded reads an attached message; unlike a top-level one it yields
// no ErrNotReport item of its own.
func (w *walker) forwarded(r io.Reader, mc *msgCtx, src string, depth int) error {
	depth++
	if depth > w.lim.MaxDepth {
		return w.refuse(src, newErr(ErrLimit, 0, "message nested deeper than %d", w.lim.MaxDepth))
	}
	br := bufio.NewReader(r)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		mc.reason = "attached message " + src + " has a broken header"
		return nil
	}
	inner := &msgCtx{src: src, header: &h}
	if err := w.entity(message.Header{Header: h}, br, inner, src, "", depth); err != nil {
		return err
	}
	if inner.reason != "" && mc.reason == "" {
		mc.reason = inner.reason
	}
	return nil
}

func partName(h message.Header, params map[string]string, pos string) string {
	_, dp := mediaType(h, "Content-Disposition")
	name := dp["filename"]
	if name == "" {
		name = params["name"]
	}
	name = strings.TrimSpace(sanitize(name))
	if name == "" {
		if pos == "" {
			return "body"
		}
		return "part" + pos
	}
	// A name is a label, never a path.
	if i := strings.LastIndexAny(name, `/\`); i >= 0 && i < len(name)-1 {
		name = name[i+1:]
	}
	return name
}

func (w *walker) multipart(mt string, params map[string]string, body io.Reader, mc *msgCtx, src, pos string, depth int) error {
	if depth > w.lim.MaxDepth {
		return w.refuse(join(src, "part"+pos), newErr(ErrLimit, 0, "MIME parts nested deeper than %d", w.lim.MaxDepth))
	}
	boundary := params["boundary"]
	if boundary == "" {
		mc.reason = mt + " without a boundary"
		return nil
	}
	isReport := mt == "multipart/report"
	mr := textproto.NewMultipartReader(body, boundary)
	var arfData []byte
	var arfErr error
	var orig *string
	var origTrunc bool
	hasARF := false
	for i := 1; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *limitError
			if errors.As(err, &le) {
				return w.refuse(src, classify(err, 0))
			}
			if mc.reason == "" {
				mc.reason = "broken MIME structure: " + err.Error()
			}
			break
		}
		if i > maxParts {
			return w.refuse(src, newErr(ErrLimit, 0, "more than %d MIME parts", maxParts))
		}
		ppos := fmt.Sprint(i)
		if pos != "" {
			ppos = pos + "." + ppos
		}
		ph := message.Header{Header: p.Header}
		pmt, _ := mediaType(ph, "Content-Type")
		switch {
		case pmt == "message/feedback-report":
			if hasARF {
				// A second one in the same multipart: RFC 5965 allows one.
				mc.reason = "more than one message/feedback-report part"
				continue
			}
			hasARF = true
			arfData, arfErr = readAllCapped(decodeBody(ph, p), maxARFPart, "feedback report part")
		case (pmt == "text/rfc822-headers" || pmt == "message/rfc822-headers" || pmt == "message/rfc822" || pmt == "message/global") && (hasARF || isReport):
			// The reported message: keep its header section only. Its
			// attachments are the sender's, never reports.
			if orig == nil {
				t, tr := readHeaderSection(decodeBody(ph, p), w.lim.MaxHeaderText)
				orig, origTrunc = &t, tr
			}
		default:
			if err := w.entity(ph, p, mc, src, ppos, depth); err != nil {
				return err
			}
		}
	}
	if hasARF {
		return w.feedback(arfData, arfErr, orig, origTrunc, mc, src)
	}
	if isReport && mc.reason == "" {
		rt := strings.ToLower(params["report-type"])
		switch rt {
		case "feedback-report":
			mc.reason = "multipart/report; report-type=feedback-report without a message/feedback-report part"
		case "":
			mc.reason = "multipart/report without report-type nor a message/feedback-report part: a plain-text notice, not an RFC 6591 report"
		default:
			mc.reason = "multipart/report of report-type " + rt + ", not a DMARC report"
		}
	}
	return nil
}

// feedback builds a failure report from its message/feedback-report part
// and the original headers, if any.
func (w *walker) feedback(data []byte, readErr error, orig *string, origTrunc bool, mc *msgCtx, src string) error {
	if readErr != nil {
		return w.refuse(src, classify(readErr, 0))
	}
	f, err := parseARF(data)
	if err != nil {
		return w.refuse(src, err)
	}
	if orig != nil {
		f.setOriginal(*orig, origTrunc)
	} else {
		f.Warnings = append(f.Warnings, "no original message or headers part")
	}
	f.setReporter(mc.header)
	return w.emit(src, nil, f, nil)
}

// leaf reads a part that is not a container of parts: a report when its
// content is gzip, zip or XML (by its first bytes, or by its name or type
// for XML), otherwise ignored.
func (w *walker) leaf(h message.Header, mt string, params map[string]string, body io.Reader, src, pos string, depth int) error {
	name := partName(h, params, pos)
	lname := strings.ToLower(name)
	br := bufio.NewReaderSize(decodeBody(h, body), 4096)
	head, err := br.Peek(512)
	psrc := join(src, name)
	k := sniff(head, err != nil)
	if len(head) == 0 || k == kindEmpty {
		if !named(lname, mt) {
			return nil
		}
		if err != nil && err != io.EOF {
			return w.refuse(psrc, classify(err, 0))
		}
		return w.refuse(psrc, newErr(ErrEmpty, 0, "empty attachment"))
	}
	switch {
	case k == kindGzip:
		return w.gzip(br, psrc, depth)
	case k == kindZip:
		return w.zip(br, psrc, depth)
	case k == kindXML && (looksXML(head) || named(lname, mt)):
		a, err := parseAggregate(&cappedReader{r: br, n: w.lim.MaxDecompressed, what: "XML document"}, w.lim)
		return w.emit(psrc, a, nil, err)
	case named(lname, mt) && (strings.HasSuffix(lname, ".gz") || strings.HasSuffix(lname, ".zip") || strings.Contains(mt, "zip")):
		return w.refuse(psrc, newErr(ErrCorrupt, 0, "%s named or typed as compressed, but its content is not gzip or zip", name))
	case named(lname, mt):
		return w.refuse(psrc, newErr(ErrNotReport, 0, "%s named or typed as XML, but its content is not XML", name))
	}
	return nil
}

// named reports whether a part's name or type says it holds a report.
func named(lname, mt string) bool {
	for _, ext := range []string{".xml", ".gz", ".zip", ".gzip"} {
		if strings.HasSuffix(lname, ext) {
			return true
		}
	}
	switch mt {
	case "application/gzip", "application/x-gzip", "application/zip", "application/x-zip",
		"application/x-zip-compressed", "application/xml", "text/xml":
		return true
	}
	return false
}

func (w *walker) gzip(r io.Reader, src string, depth int) error {
	if depth+1 > w.lim.MaxDepth {
		return w.refuse(src, newErr(ErrLimit, 0, "gzip nested deeper than %d", w.lim.MaxDepth))
	}
	a, err := gunzipAggregate(r, w.lim)
	return w.emit(src, a, nil, err)
}

func (w *walker) zip(r io.Reader, src string, depth int) error {
	data, err := readAllCapped(r, w.lim.MaxCompressed, "zip archive")
	if err != nil {
		return w.refuse(src, classify(err, 0))
	}
	return w.zipAggregates(data, src, depth+1)
}

// mediaType reads a Content-Type or Content-Disposition field: the value
// lower-cased and its parameters. Where mime.ParseMediaType refuses the
// field (an unquoted boundary holding "=", a duplicated parameter, as
// some senders write), it falls back to splitting on ';' and '='.
func mediaType(h message.Header, field string) (string, map[string]string) {
	raw := h.Get(field)
	if raw == "" {
		return "", map[string]string{}
	}
	if mt, params, err := mime.ParseMediaType(raw); err == nil {
		return mt, params
	}
	parts := strings.Split(raw, ";")
	params := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if _, dup := params[k]; k != "" && !dup {
			params[k] = v
		}
	}
	return strings.ToLower(strings.TrimSpace(parts[0])), params
}
