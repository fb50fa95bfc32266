package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/store"
)

// source is a report to build: one the store created, or, for a dry run
// or a preview, one that would be created now.
type source struct {
	id      string
	domain  string
	period  store.Period
	policy  report.Published
	created time.Time // the Date of the mail: fixed, so that retries are the same message
	records func(ctx context.Context, fn func(store.Record) error) error
}

// reportSource is the source of a created report: its frozen records.
func (s *Scheduler) reportSource(rep store.Report) source {
	return source{id: rep.ID, domain: rep.Domain, period: rep.Period, policy: rep.Policy, created: rep.Created,
		records: func(ctx context.Context, fn func(store.Record) error) error {
			return s.st.ReportRecords(ctx, rep.ID, fn)
		}}
}

// liveSource is the source of a report not created yet: the records as
// they are now, under the ID the report will have.
func (s *Scheduler) liveSource(c *Config, domain string, p store.Period, pol report.Published, now time.Time) source {
	return source{id: store.ReportID(c.OrgName, domain, p), domain: domain, period: p, policy: pol, created: now,
		records: func(ctx context.Context, fn func(store.Record) error) error {
			return s.st.Records(ctx, domain, p, fn)
		}}
}

// metadata is the report_metadata of src. The end is the last second of
// the period, as reports are commonly written (a UTC day is 00:00:00 to
// 23:59:59) and the RFC 9990 sample shows.
func (c *Config) metadata(src source) aggregate.Metadata {
	return aggregate.Metadata{
		OrgName:          c.OrgName,
		Email:            c.Email,
		ExtraContactInfo: c.ExtraContactInfo,
		ReportID:         src.id,
		Begin:            src.period.Begin,
		End:              src.period.End.Add(-time.Second),
		Generator:        c.Generator,
	}
}

// fileName is the attachment's name.
func (c *Config) fileName(src source, f aggregate.Format) string {
	m := c.metadata(src)
	return aggregate.FileName(f, c.Submitter, src.domain, m.Begin, m.End, src.id)
}

// errStopped ends a store iteration that the reader gave up.
var errStopped = errors.New("iteration stopped")

// records turns a store iteration into the pull function aggregate.Write
// takes. The store streams rows from its cursor and aggregate.Write
// streams XML out, so a report of any size is built in constant memory.
// Records without a source IP (a connection the MTA gave no address for)
// cannot be written and are left out; skipped counts them.
func records(ctx context.Context, each func(context.Context, func(store.Record) error) error, skipped *int64) (next func() (aggregate.Record, bool, error), stop func()) {
	var iterErr error
	seq := func(yield func(store.Record) bool) {
		iterErr = each(ctx, func(r store.Record) error {
			if !yield(r) {
				return errStopped
			}
			return nil
		})
	}
	pull, stop := iter.Pull(seq)
	next = func() (aggregate.Record, bool, error) {
		for {
			r, ok := pull()
			if !ok {
				if iterErr != nil && !errors.Is(iterErr, errStopped) {
					return aggregate.Record{}, false, iterErr
				}
				return aggregate.Record{}, false, nil
			}
			if !r.SourceIP.IsValid() {
				*skipped += r.Count
				continue
			}
			return aggregate.Record{
				SourceIP:     r.SourceIP,
				Count:        r.Count,
				Disposition:  r.Disposition,
				DKIMAligned:  r.DKIM == "pass",
				SPFAligned:   r.SPF == "pass",
				Reasons:      r.Reasons,
				HeaderFrom:   r.HeaderFrom,
				EnvelopeFrom: r.EnvelopeFrom,
				EnvelopeTo:   r.EnvelopeTo,
				DKIM:         r.AuthDKIM,
				SPF:          r.AuthSPF,
			}, true, nil
		}
	}
	return next, stop
}

// WriteXML writes the XML of src in format f to w, uncompressed.
func (c *Config) writeXML(ctx context.Context, w io.Writer, f aggregate.Format, src source) error {
	var skipped int64
	next, stop := records(ctx, src.records, &skipped)
	defer stop()
	return aggregate.Write(w, f, c.metadata(src), src.policy, next)
}

// built is a report's gzip attachment in the spool.
type built struct {
	path string // the file
	name string // the attachment's name
	size int64  // compressed bytes
}

// build writes the gzip attachment of src in format f into dir.
func (c *Config) build(ctx context.Context, dir string, src source, f aggregate.Format) (*built, error) {
	file, err := os.CreateTemp(dir, "report-*.xml.gz")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	b := &built{path: file.Name(), name: c.fileName(src, f)}
	var skipped int64
	next, stop := records(ctx, src.records, &skipped)
	b.size, err = aggregate.WriteGzip(file, f, c.metadata(src), src.policy, b.name, next)
	stop()
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(b.path)
		return nil, fmt.Errorf("build report %s of %s: %w", src.id, src.domain, err)
	}
	return b, nil
}

// fileCache builds each report once per run and format, for all the
// destinations that get it, and removes the files when the run is over.
type fileCache struct {
	c   *Config
	dir string

	mu    sync.Mutex
	files map[string]*cachedFile
}

type cachedFile struct {
	once sync.Once
	b    *built
	err  error
}

func newFileCache(c *Config, dir string) *fileCache {
	return &fileCache{c: c, dir: dir, files: map[string]*cachedFile{}}
}

func (fc *fileCache) get(ctx context.Context, src source, f aggregate.Format) (*built, error) {
	key := src.id + "/" + f.String()
	fc.mu.Lock()
	e := fc.files[key]
	if e == nil {
		e = &cachedFile{}
		fc.files[key] = e
	}
	fc.mu.Unlock()
	e.once.Do(func() { e.b, e.err = fc.c.build(ctx, fc.dir, src, f) })
	return e.b, e.err
}

func (fc *fileCache) cleanup() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, e := range fc.files {
		if e.b != nil {
			os.Remove(e.b.path)
		}
	}
	clear(fc.files)
}

// messageID is the Message-ID of a report's mail: derived from the report
// ID (RFC 9990 §3.5.2), the same at every retry, and different for the
// two formats, which are two different messages.
func (c *Config) messageID(id string, f aggregate.Format) string {
	if f == aggregate.RFC9990 {
		id += ".rfc9990"
	}
	return id + "@" + c.Submitter
}

// compose writes the signed mail carrying b to dst: the DKIM-Signature
// fields, then the message. The message is composed into a spool file
// first, which signing reads and the caller then streams.
func (c *Config) compose(dir string, src source, b *built, f aggregate.Format, to string) (*os.File, string, error) {
	att, err := os.Open(b.path)
	if err != nil {
		return nil, "", err
	}
	defer att.Close()
	msg, err := os.CreateTemp(dir, "report-*.eml")
	if err != nil {
		return nil, "", fmt.Errorf("spool: %w", err)
	}
	fail := func(err error) (*os.File, string, error) {
		msg.Close()
		os.Remove(msg.Name())
		return nil, "", err
	}
	err = delivery.Compose(msg, delivery.Message{
		FromName:     c.FromName,
		FromAddress:  c.FromAddress,
		To:           []string{to},
		ReportDomain: src.domain,
		Submitter:    c.Submitter,
		ReportID:     src.id,
		FileName:     b.name,
		Attachment:   att,
		Date:         src.created,
		MessageID:    c.messageID(src.id, f),
	})
	if err != nil {
		return fail(err)
	}
	sig, err := c.sign(msg)
	if err != nil {
		return fail(err)
	}
	if _, err := msg.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return msg, sig, nil
}

// sign returns the DKIM-Signature fields for the message in f, "" when no
// signer is configured.
func (c *Config) sign(f io.ReadSeeker) (string, error) {
	if len(c.Signers) == 0 {
		return "", nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return delivery.Signatures(f, c.Signers...)
}

// errorReport writes the RFC 7489 §7.2.2 error report about a report too
// large for every destination: a text/plain MIME message with the
// report's Subject and the DSN-style fields of aggregate.ErrorReport.
func (c *Config) errorReport(w io.Writer, src source, to string, e aggregate.ErrorReport, date time.Time) error {
	var b strings.Builder
	field := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	field("Auto-Submitted", delivery.AutoSubmitted)
	field("Content-Transfer-Encoding", "7bit")
	field("Content-Type", "text/plain; charset=us-ascii")
	field("MIME-Version", "1.0")
	field("Message-ID", "<"+src.id+".error@"+c.Submitter+">")
	field("Date", date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	field("Subject", delivery.Subject(src.domain, c.Submitter, src.id))
	field("To", "<"+to+">")
	from := "<" + c.FromAddress + ">"
	if c.FromName != "" && isPlainPhrase(c.FromName) {
		from = c.FromName + " " + from
	}
	field("From", from)
	b.WriteString("\r\n")
	b.WriteString("A DMARC aggregate report is available but could not be sent: it is larger\r\n")
	b.WriteString("than the size limits of its destinations (RFC 7489, section 7.2.2).\r\n\r\n")
	b.WriteString(e.Text())
	msg := b.String()
	sig, err := c.sign(strings.NewReader(msg))
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, sig+msg)
	return err
}

// isPlainPhrase reports whether s can be a display name without quoting
// or encoding.
func isPlainPhrase(s string) bool {
	for _, r := range s {
		if !(r == ' ' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)) {
			return false
		}
	}
	return strings.TrimSpace(s) != ""
}
