package received

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dmarcd/dmarcd/report/ingest"
	"github.com/dmarcd/dmarcd/report/store"
)

// MaxExamples is how many rejected reports ImportSummary keeps per class.
const MaxExamples = 5

// Importer stores the reports found in files into a store.
type Importer struct {
	// Store receives the reports.
	Store store.Received
	// Limits bound what one input may cost; the zero value is
	// ingest.DefaultLimits.
	Limits ingest.Limits
	// Progress, when set, is called after each report read (stored,
	// duplicate or rejected) with where the import is. It runs on the
	// importing goroutine: keep it quick.
	Progress func(Progress)
	// OnReject, when set, is called for each rejected report.
	OnReject func(Reject)
	// OnWarnings, when set, is called for each report accepted with
	// warnings (what the parser tolerated), whether new or a duplicate.
	OnWarnings func(source string, warnings []string)
}

// Progress is where an import is.
type Progress struct {
	// File is the file being read.
	File string
	// FilesDone of FilesTotal files have been read; BytesDone of
	// BytesTotal bytes (their sizes on disk).
	FilesDone, FilesTotal int
	BytesDone, BytesTotal int64
	// Summary is the running count.
	Summary ImportSummary
}

// ImportSummary counts what an import did.
type ImportSummary struct {
	// Files is how many files were read.
	Files int `json:"files"`
	// Reports counts the aggregate reports stored, with their Records
	// and Messages.
	Reports  int   `json:"reports"`
	Records  int64 `json:"records"`
	Messages int64 `json:"messages"`
	// Failures counts the failure reports stored.
	Failures int `json:"failures"`
	// Duplicates counts the reports (aggregate or failure) that were
	// already stored, and were not stored again.
	Duplicates int `json:"duplicates"`
	// Warned counts the reports accepted with warnings.
	Warned int `json:"warned"`
	// Rejected counts the reports refused; Rejects groups them by class.
	Rejected int           `json:"rejected"`
	Rejects  []RejectClass `json:"rejects,omitempty"`
}

// RejectClass is the rejected reports of one class.
type RejectClass struct {
	// Class is the refusal's class as ingest names it: "empty",
	// "not well-formed XML", "DTD not allowed", "invalid report",
	// "limit exceeded", "corrupt data", "unsupported",
	// "not a DMARC report", "read error".
	Class string `json:"class"`
	Count int    `json:"count"`
	// Examples are the first MaxExamples of them.
	Examples []Reject `json:"examples"`
}

// Reject is one rejected report: where, and why.
type Reject struct {
	Source string `json:"source"`
	Line   int    `json:"line,omitempty"` // in the XML document, 0 when none applies
	Class  string `json:"class"`
	Reason string `json:"reason"`
}

// String formats r as "source:line: reason".
func (r Reject) String() string {
	s := r.Source
	if r.Line > 0 {
		s += fmt.Sprintf(":%d", r.Line)
	}
	return s + ": " + r.Reason
}

// rejectOf describes a refusal.
func rejectOf(src string, err error) Reject {
	r := Reject{Source: src, Class: ingest.ErrIO.Error(), Reason: err.Error()}
	var e *ingest.Error
	if errors.As(err, &e) {
		r.Line = e.Line
		if e.Source != "" {
			r.Source = e.Source
		}
		if e.Kind != nil {
			r.Class = e.Kind.Error()
		}
		r.Reason = r.Class
		if e.Msg != "" {
			r.Reason += ": " + e.Msg
		}
	}
	return r
}

func (s *ImportSummary) reject(r Reject) {
	s.Rejected++
	for i := range s.Rejects {
		if c := &s.Rejects[i]; c.Class == r.Class {
			c.Count++
			if len(c.Examples) < MaxExamples {
				c.Examples = append(c.Examples, r)
			}
			return
		}
	}
	s.Rejects = append(s.Rejects, RejectClass{Class: r.Class, Count: 1, Examples: []Reject{r}})
}

// clone copies s deep enough for a Progress callback to keep.
func (s ImportSummary) clone() ImportSummary {
	s.Rejects = append([]RejectClass(nil), s.Rejects...)
	return s
}

// Import reads every path (a file, or a directory tree: see ingest.Walk)
// and stores the reports found. It returns what it did; the error is
// the store's, or ctx's, which stop the import (what was stored until
// then stays: each report is stored whole or not at all). A path that
// cannot be read is a rejected report, not an error.
func (im *Importer) Import(ctx context.Context, paths ...string) (ImportSummary, error) {
	ix := scanFiles(paths)
	var sum ImportSummary
	p := Progress{FilesTotal: len(ix.sizes), BytesTotal: ix.total}
	seen := map[string]bool{}
	report := func(src string) {
		f := ix.fileOf(src)
		if !seen[f] {
			seen[f] = true
			sum.Files++
			if p.File != "" {
				p.FilesDone++
				p.BytesDone += ix.sizes[p.File]
			}
			p.File = f
		}
		if im.Progress != nil {
			p.Summary = sum.clone()
			im.Progress(p)
		}
	}
	for _, path := range paths {
		err := ingest.Walk(path, im.Limits, func(it ingest.Item) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := im.item(ctx, &sum, it)
			report(it.Source)
			return err
		})
		if err != nil {
			if serr := stopError(ctx, err); serr != nil {
				return sum, serr
			}
			// The path itself could not be read.
			r := rejectOf(path, &ingest.Error{Source: path, Kind: ingest.ErrIO, Msg: err.Error(), Err: err})
			sum.reject(r)
			if im.OnReject != nil {
				im.OnReject(r)
			}
			report(path)
		}
	}
	if p.File != "" {
		p.FilesDone++
		p.BytesDone += ix.sizes[p.File]
	}
	if im.Progress != nil {
		p.File, p.Summary = "", sum.clone()
		p.BytesDone = max(p.BytesDone, p.BytesTotal)
		im.Progress(p)
	}
	return sum, nil
}

// ImportMessage stores the reports found in one message read from r (as
// the milter passes the mail addressed to the report mailboxes); source
// names it in rejects and in the stored reports, a queue ID say. It
// returns what it did, as Import does; the error is the store's or
// ctx's. Progress is not called.
func (im *Importer) ImportMessage(ctx context.Context, r io.Reader, source string) (ImportSummary, error) {
	var sum ImportSummary
	sum.Files = 1
	err := ingest.ParseMessage(r, im.Limits, func(it ingest.Item) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		it.Source = messageSource(source, it.Source)
		var e *ingest.Error
		if errors.As(it.Err, &e) {
			e.Source = messageSource(source, e.Source)
		}
		return im.item(ctx, &sum, it)
	})
	if err != nil {
		if serr := stopError(ctx, err); serr != nil {
			return sum, serr
		}
		return sum, err
	}
	return sum, nil
}

// stopError says why a walk ended early: ctx's error, or the store's; nil
// when err is neither (the input itself could not be read).
func stopError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var se *storeError
	if errors.As(err, &se) {
		return se.err
	}
	return nil
}

// messageSource joins the name of a message and the place of an item in
// it ("" for the message itself).
func messageSource(msg, inner string) string {
	if inner == "" {
		return msg
	}
	return msg + ":" + inner
}

// storeError is an error of the store, which stops a walk.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// item stores one item of a walk.
func (im *Importer) item(ctx context.Context, sum *ImportSummary, it ingest.Item) error {
	var warnings []string
	switch {
	case it.Err != nil:
		r := rejectOf(it.Source, it.Err)
		sum.reject(r)
		if im.OnReject != nil {
			im.OnReject(r)
		}
		return nil
	case it.Aggregate != nil:
		r := reportOf(it.Aggregate, it.Source)
		_, added, err := im.Store.AddReceived(ctx, r)
		if err != nil {
			return &storeError{fmt.Errorf("%s: %w", it.Source, err)}
		}
		if added {
			sum.Reports++
			sum.Records += int64(len(r.Records))
			sum.Messages += r.Messages
		} else {
			sum.Duplicates++
		}
		warnings = it.Aggregate.Warnings
	case it.Failure != nil:
		_, added, err := im.Store.AddFailure(ctx, failureOf(it.Failure, it.Source))
		if err != nil {
			return &storeError{fmt.Errorf("%s: %w", it.Source, err)}
		}
		if added {
			sum.Failures++
		} else {
			sum.Duplicates++
		}
		warnings = it.Failure.Warnings
	}
	if len(warnings) > 0 {
		sum.Warned++
		if im.OnWarnings != nil {
			im.OnWarnings(it.Source, warnings)
		}
	}
	return nil
}

// reportOf is the store's form of an aggregate report read from src.
func reportOf(a *ingest.Aggregate, src string) *store.ReceivedReport {
	r := &store.ReceivedReport{
		Key: a.Key(), Org: a.Org, Email: a.Email, ExtraContact: a.ExtraContact, ReportID: a.ReportID,
		Begin: a.Begin, End: a.End, Policy: a.Policy, Format: a.Format, Version: a.Version, Generator: a.Generator,
		Errors: a.Errors, Warnings: a.Warnings, Source: src,
		Records: make([]store.ReceivedRecord, len(a.Records)),
	}
	for i := range a.Records {
		x := &a.Records[i]
		r.Records[i] = store.ReceivedRecord{
			SourceIP: x.SourceIP, Count: x.Count, Disposition: x.Disposition, DKIM: x.DKIM, SPF: x.SPF,
			Reasons: x.Reasons, HeaderFrom: x.HeaderFrom, EnvelopeFrom: x.EnvelopeFrom, EnvelopeTo: x.EnvelopeTo,
			AuthDKIM: x.DKIMResults, AuthSPF: x.SPFResults,
		}
	}
	return r
}

// failureOf is the store's form of a failure report read from src.
func failureOf(f *ingest.Failure, src string) *store.ReceivedFailure {
	x := &store.ReceivedFailure{
		Key: f.Key(), ReportedDomain: f.ReportedDomain, SourceIP: f.SourceIP, FeedbackType: f.FeedbackType,
		Version: f.Version, UserAgent: f.UserAgent, AuthFailure: f.AuthFailure, DeliveryResult: f.DeliveryResult,
		IdentityAlignment: f.IdentityAlignment, Incidents: f.Incidents, ArrivalDate: f.ArrivalDate,
		OriginalMailFrom: f.OriginalMailFrom, OriginalRcptTo: f.OriginalRcptTo, OriginalEnvelopeID: f.OriginalEnvelopeID,
		OriginalFrom: f.OriginalFrom, OriginalSubject: f.OriginalSubject, OriginalMessageID: f.OriginalMessageID,
		DKIMDomain: f.DKIMDomain, DKIMIdentity: f.DKIMIdentity, DKIMSelector: f.DKIMSelector, SPFDNS: f.SPFDNS,
		AuthenticationResults: f.AuthenticationResults, ReportedURI: f.ReportedURI,
		Reporter: f.Reporter.From, ReporterName: f.Reporter.Name, ReportingMTA: f.Reporter.ReportingMTA,
		ReportMessageID: f.Reporter.MessageID, ReportSubject: f.Reporter.Subject, ReportDate: f.Reporter.Date,
		Headers: f.Headers, HeadersTruncated: f.HeadersTruncated, Warnings: f.Warnings, Source: src,
	}
	for _, fl := range f.Fields {
		x.Fields = append(x.Fields, [2]string{fl.Name, fl.Value})
	}
	return x
}

// fileIndex is the regular files under the paths of an import, by the
// name ingest.Walk gives them, with their sizes: what progress is
// measured in.
type fileIndex struct {
	sizes map[string]int64
	total int64
}

// scanFiles lists the regular files under paths as ingest.Walk names
// them. It only stats: a file it lists that Walk skips (a maildir's
// tmp/) only makes the byte count a little larger.
func scanFiles(paths []string) fileIndex {
	ix := fileIndex{sizes: map[string]int64{}}
	addFile := func(name string, size int64) {
		if _, ok := ix.sizes[name]; !ok {
			ix.sizes[name] = size
			ix.total += size
		}
	}
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil {
			addFile(path, 0) // a file, rejected as unreadable
			continue
		}
		if !st.IsDir() {
			addFile(path, st.Size())
			continue
		}
		root := path
		if lst, err := os.Lstat(path); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
			if root, err = filepath.EvalSymlinks(path); err != nil {
				continue
			}
		}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
				addFile(path+strings.TrimPrefix(p, root), info.Size())
			}
			return nil
		})
	}
	return ix
}

// fileOf returns the file an item's source is in: the longest prefix of
// src that is a listed file and ends where a layer begins (':' or '#'),
// else src up to the first layer.
func (ix fileIndex) fileOf(src string) string {
	if _, ok := ix.sizes[src]; ok {
		return src
	}
	best := ""
	for i := 0; i < len(src); i++ {
		if src[i] != ':' && src[i] != '#' {
			continue
		}
		if _, ok := ix.sizes[src[:i]]; ok {
			best = src[:i]
		}
	}
	if best != "" {
		return best
	}
	if i := strings.IndexAny(src, ":#"); i > 0 {
		return src[:i]
	}
	return src
}
