package scheduler

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/dmarcd/dmarcd/internal/testenv"
	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// monday is the start of the week the tests' rows are in: Monday 2 March
// 2026, 00:00 UTC.
var monday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func day(n int) time.Time { return monday.Add(time.Duration(n) * Daily) }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sent is one message the fake sender took.
type sent struct {
	At   time.Time
	From string
	To   string
	Data []byte
}

// fakeSender records what it is given, failing as fail says.
type fakeSender struct {
	clock *clock

	mu       sync.Mutex
	sent     []sent
	attempts map[string]int
	// fail returns the error of the n-th attempt (from 1) to rcpt, nil
	// to accept it.
	fail func(rcpt string, n int) error
}

func (f *fakeSender) Send(ctx context.Context, from string, to []string, msg io.Reader) (delivery.Result, error) {
	data, err := io.ReadAll(msg)
	if err != nil {
		return delivery.Result{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attempts == nil {
		f.attempts = map[string]int{}
	}
	rcpt := to[0]
	f.attempts[rcpt]++
	if f.fail != nil {
		if err := f.fail(rcpt, f.attempts[rcpt]); err != nil {
			return delivery.Result{Rejected: map[string]error{rcpt: err}, Temporary: delivery.IsTemporary(err)}, err
		}
	}
	f.sent = append(f.sent, sent{At: f.clock.Now(), From: from, To: rcpt, Data: data})
	return delivery.Result{Accepted: to}, nil
}

func (f *fakeSender) Sent() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.sent...)
}

// env is a scheduler over a fresh SQLite store, with a fake clock and
// sender.
type env struct {
	t      *testing.T
	db     *store.DB
	clock  *clock
	sender *fakeSender
	s      *Scheduler
	logs   *bytes.Buffer
}

// testConfig is what the tests start from: reports on, every domain and
// destination served at once, no spreading, no limits.
func testConfig() Config {
	c := Default()
	c.Enabled = true
	c.OrgName = "Test Org"
	c.FromName = "DMARC Reports"
	c.FromAddress = "dmarc-reports@reporter.test"
	c.Generator = "dmarcd test"
	c.Spread = 0
	c.Global, c.PerDestination = Rate{}, Rate{}
	c.Concurrency = 2
	return c
}

func newEnv(t *testing.T, cfg Config, deps Deps) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: monday}, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "dmarcd.db"),
		store.Options{Reporter: cfg.OrgName, Now: e.clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.sender = &fakeSender{clock: e.clock}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = t.TempDir()
	}
	deps.Store = db
	deps.Sender = e.sender
	deps.Now = e.clock.Now
	deps.Logger = log
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", e.logs)
		}
	})
	return e
}

type lockedWriter struct{ w *bytes.Buffer }

var logMu sync.Mutex

func (l lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.w.Write(p)
}

// ingest stores n messages of domain at t from ip, with the policy pol
// (storetest.Policy's when nil).
func (e *env) ingest(domain string, t time.Time, ip string, n int, change ...func(*report.Row)) {
	e.t.Helper()
	var b store.Batch
	for range n {
		b.Add(storetest.Row(domain, t, ip, change...))
	}
	if err := e.db.Ingest(context.Background(), &b); err != nil {
		e.t.Fatal(err)
	}
}

// withRUA sets the policy's rua list.
func withRUA(uris ...string) func(*report.Row) {
	return func(r *report.Row) { r.Published.RUA = uris }
}

// rfc7489 makes the row one evaluated under RFC 7489 (the ri applies).
func rfc7489(r *report.Row) { r.Published.DiscoveryMethod = "psl" }

// runOnce runs the scheduler once at the clock's time.
func (e *env) runOnce(opts ...RunOptions) Summary {
	e.t.Helper()
	var o RunOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	sum, err := e.s.RunOnce(context.Background(), o)
	if err != nil {
		e.t.Fatalf("RunOnce at %v: %v", e.clock.Now(), err)
	}
	return sum
}

// reports returns the store's reports, oldest period first.
func (e *env) reports(domain string) []store.Report {
	e.t.Helper()
	reps, err := e.db.Reports(context.Background(), store.ReportFilter{Domain: domain})
	if err != nil {
		e.t.Fatal(err)
	}
	for i, j := 0, len(reps)-1; i < j; i, j = i+1, j-1 {
		reps[i], reps[j] = reps[j], reps[i]
	}
	return reps
}

// feedback is a report as the tests read it back.
type feedback struct {
	XMLName  xml.Name
	Metadata struct {
		OrgName  string `xml:"org_name"`
		Email    string `xml:"email"`
		ReportID string `xml:"report_id"`
		Begin    int64  `xml:"date_range>begin"`
		End      int64  `xml:"date_range>end"`
	} `xml:"report_metadata"`
	Policy struct {
		Domain string `xml:"domain"`
	} `xml:"policy_published"`
	Records []struct {
		SourceIP string `xml:"row>source_ip"`
		Count    int64  `xml:"row>count"`
	} `xml:"record"`
}

func (f feedback) total() int64 {
	var n int64
	for _, r := range f.Records {
		n += r.Count
	}
	return n
}

// parsed is a report mail taken apart.
type parsed struct {
	Header   message.Header
	FileName string
	XML      []byte
	Report   feedback
}

// parseMail reads a report mail: its header, its attachment gunzipped and
// the XML decoded.
func parseMail(t testing.TB, data []byte) parsed {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read mail: %v", err)
	}
	p := parsed{Header: e.Header}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("not multipart: %s", data)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if params["filename"] == "" {
			continue
		}
		p.FileName = params["filename"]
		zr, err := gzip.NewReader(part.Body)
		if err != nil {
			t.Fatalf("attachment: %v", err)
		}
		if p.XML, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if p.XML == nil {
		t.Fatalf("no attachment in %s", data)
	}
	if err := xml.Unmarshal(p.XML, &p.Report); err != nil {
		t.Fatalf("XML: %v\n%s", err, p.XML)
	}
	return p
}

// xmllint validates doc against the reference schema of its format, and
// skips where the reference folder is absent.
func xmllint(t *testing.T, schema string, doc []byte) string {
	t.Helper()
	path := filepath.Join("schemas", schema)
	return testenv.Xmllint(t, filepath.Join(testenv.ReferenceDir(t, path), path), doc)
}

// ip returns the n-th test address.
func ip(n int) string {
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(n)}).String()
}
