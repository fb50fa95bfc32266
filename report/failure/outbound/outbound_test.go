package outbound

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/smtptest"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/failure"
	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// logBuffer collects log output, safe for the goroutines that write it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openStore(t *testing.T, path string, now func() time.Time) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), path, store.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func incident(i int, at time.Time) failure.Incident {
	return failure.Incident{
		Spec: "rfc9989", PolicyDomain: "example.org", FromDomain: "example.org", Arrival: at,
		SourceIP: netip.MustParseAddr("203.0.113.77"), MailFrom: "bounce@spoof.example",
		RcptTo: []string{"alice@example.net"}, AuthServID: "mx.example.net", DMARC: "fail", DeliveryResult: "reject",
		SPF:     failure.Auth{Domain: "spoof.example", Result: "pass"},
		Headers: []failure.Field{{Name: "From", Value: " <billing@example.org>"}, {Name: "Message-ID", Value: fmt.Sprintf(" <%d@spoof.example>", i)}},
		RUF:     []failure.Destination{{Raw: "mailto:ruf@example.org", Address: "ruf@example.org"}},
	}
}

// fakeVerifier authorizes the destinations whose domain is listed.
type fakeVerifier map[string]bool

func (v fakeVerifier) VerifyDestination(_ context.Context, pd string, u dmarc.URI, tag string) (dmarc.Destination, error) {
	if v[u.Domain()] {
		return dmarc.Destination{URI: u, Authorized: true, Send: []dmarc.URI{u}}, nil
	}
	return dmarc.Destination{URI: u, External: true, Reason: "no record at " + pd + "._report._dmarc." + u.Domain()}, nil
}

func senderConfig() Config {
	return Config{
		Enabled: true, FromName: "DMARC failure reports", FromAddress: "dmarc@mx.example.net",
		PerDomain: scheduler.Rate{N: 10, Per: 24 * time.Hour}, UserAgent: "dmarcd/test", ReportingMTA: "mx.example.net",
	}
}

func TestABurstSendsNoMoreThanTheRateLimitAndCountsTheRest(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			testBurst(t, d.open(t, func() time.Time { return now }), &now)
		})
	}
}

func testBurst(t *testing.T, db *store.DB, clockNow *time.Time) {
	ctx := context.Background()
	now := *clockNow
	clock := func() time.Time { return now }
	srv := smtptest.Start(t)
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	q := NewQueue(db, QueueConfig{Redactor: failure.Redactor{LocalParts: true}}, 2000, nil, log)
	for i := range 1000 {
		if !q.Add(incident(i, now)) {
			t.Fatalf("incident %d dropped by a queue of 2,000", i)
		}
	}
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Written != 1000 || st.Duplicates != 0 {
		t.Fatalf("queue stats %+v, want 1,000 written", st)
	}

	s, err := NewSender(senderConfig(), SenderDeps{Store: db, Verifier: fakeVerifier{"example.org": true},
		Sender: delivery.Relay{Addr: srv.Addr(), StartTLS: delivery.StartTLSNone}, Now: clock, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var sum Summary
	for range 3 { // 1,000 are due; a run looks at 500
		got, err := s.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sum.Sent += got.Sent
	}
	if sum.Sent != 10 {
		t.Errorf("sent %d, want the limit, 10", sum.Sent)
	}
	if n := len(srv.Messages()); n != 10 {
		t.Errorf("%d messages at the relay, want 10", n)
	}
	tot := s.Totals()
	if tot.Sent != 10 || tot.Dropped[ReasonRateLimited] != 990 {
		t.Errorf("totals %+v, want 10 sent and 990 dropped by the rate limit", tot)
	}
	st, err := db.FailureStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, c := range st {
		counts[c.State+"/"+c.Reason] = c.Count
	}
	if counts["sent/"] != 10 || counts["dropped/rate_limited"] != 990 || counts["pending/"] != 0 {
		t.Errorf("store counts %v", counts)
	}
	if !strings.Contains(logs.String(), "failure reports dropped by the rate limits") || !strings.Contains(logs.String(), "example.org=") {
		t.Errorf("no log line for the rate limit:\n%s", logs.String())
	}

	t.Run("the limit holds in the next run too", func(t *testing.T) {
		q := NewQueue(db, QueueConfig{}, 10, nil, log)
		q.Add(incident(5000, now))
		q.Close(ctx)
		now = now.Add(time.Hour)
		*clockNow = now
		got, err := s.RunOnce(ctx)
		if err != nil || got.Sent != 0 || got.Dropped[ReasonRateLimited] != 1 {
			t.Errorf("next run %+v, %v; want one more dropped", got, err)
		}
	})
}

// blockedStore is a store that takes no incident until released.
type blockedStore struct {
	store.FailureQueue
	release chan struct{}
}

func (b blockedStore) EnqueueFailures(ctx context.Context, fs []store.NewFailure, _ time.Duration) (int, int, error) {
	<-b.release
	return len(fs), 0, nil
}

func TestAStuckStoreCostsBoundedMemoryAndNeverBlocks(t *testing.T) {
	st := blockedStore{release: make(chan struct{})}
	q := NewQueue(st, QueueConfig{}, 1000, nil, slog.New(slog.DiscardHandler))
	big := incident(1, time.Now())
	big.Body = make([]byte, 10<<20)
	taken := 0
	for range 20 {
		if q.Add(big) {
			taken++
		}
	}
	if taken == 0 || taken > 8 {
		t.Errorf("%d incidents of 10 MiB taken while the store is stuck, want a few (64 MiB)", taken)
	}
	if st := q.Stats(); st.Overflow != int64(20-taken) {
		t.Errorf("overflow %d, want %d", st.Overflow, 20-taken)
	}
	close(st.release)
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNoReportGoesToAnUnauthorizedExternalDestination(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	db := openStore(t, filepath.Join(t.TempDir(), store.DefaultFile), func() time.Time { return now })
	srv := smtptest.Start(t)
	inc := incident(1, now)
	inc.RUF = []failure.Destination{{Raw: "mailto:ruf@thirdparty.example", Address: "ruf@thirdparty.example"}}
	q := NewQueue(db, QueueConfig{}, 10, nil, nil)
	q.Add(inc)
	q.Close(ctx)
	s, err := NewSender(senderConfig(), SenderDeps{Store: db, Verifier: fakeVerifier{"example.org": true},
		Sender: delivery.Relay{Addr: srv.Addr(), StartTLS: delivery.StartTLSNone}, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := s.RunOnce(ctx)
	if err != nil || sum.Sent != 0 || sum.Dropped[ReasonUnauthorized] != 1 {
		t.Errorf("RunOnce = %+v, %v; want one dropped as unauthorized", sum, err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

func TestQueuedReportsSurviveARestart(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), store.DefaultFile)
	db, err := store.OpenSQLite(ctx, path, store.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(db, QueueConfig{}, 10, nil, nil)
	q.Add(incident(1, now))
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openStore(t, path, clock)
	srv := smtptest.Start(t)
	s, err := NewSender(senderConfig(), SenderDeps{Store: db, Sender: delivery.Relay{Addr: srv.Addr(), StartTLS: delivery.StartTLSNone},
		Now: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := s.RunOnce(ctx); err != nil || sum.Sent != 1 {
		t.Fatalf("after a restart: %+v, %v", sum, err)
	}
	m := srv.Messages()[0]
	if m.From != "dmarc@mx.example.net" || len(m.To) != 1 || m.To[0] != "ruf@example.org" {
		t.Errorf("envelope %s -> %v", m.From, m.To)
	}
}

func TestTheSameFailureTwiceIsReportedOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	db := openStore(t, filepath.Join(t.TempDir(), store.DefaultFile), func() time.Time { return now })
	q := NewQueue(db, QueueConfig{}, 10, nil, nil)
	a, b := incident(1, now), incident(1, now.Add(time.Minute))
	b.RcptTo = []string{"bob@example.net"} // the same message, another transaction
	q.Add(a)
	q.Add(b)
	q.Close(ctx)
	if st := q.Stats(); st.Written != 1 || st.Duplicates != 1 {
		t.Errorf("stats %+v, want 1 written and 1 duplicate", st)
	}
}

func TestAReportOverTheSizeLimitLosesTheBodyFirst(t *testing.T) {
	inc := incident(1, time.Now())
	inc.Body = bytes.Repeat([]byte("x"), 20000)
	r := &run{cfg: &Config{FromAddress: "dmarc@mx.example.net", WholeMessage: true}, now: time.Now()}
	msg, err := r.compose(inc, store.FailureReport{ID: 1, Destination: "ruf@example.org"}, []string{"ruf@example.org"}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, []byte("xxxxxxxx")) || !bytes.Contains(msg, []byte("text/rfc822-headers")) {
		t.Error("the body was kept over the limit")
	}
	if _, err := r.compose(inc, store.FailureReport{ID: 1}, []string{"ruf@example.org"}, 100); err == nil {
		t.Error("a report over the limit even without its body was composed")
	}
}
