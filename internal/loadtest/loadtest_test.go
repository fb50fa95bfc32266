package loadtest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/milter"
	"github.com/dmarcd/dmarcd/report"
)

// These tests check that the load test measures what it says: the corpus,
// the DNS server, the driver and the null milter work, and the null
// milter negotiates what dmarcd negotiates. Nothing here asserts a
// timing: that is make bench's job.

func TestCorpus(t *testing.T) {
	c := NewCorpus(1000, time.Hour, 2048)
	if a, b := c.Message(1234), c.Message(1234); !slices.Equal(a.Headers, b.Headers) || a.QueueID != b.QueueID {
		t.Error("Message is not deterministic")
	}
	kinds := map[string]int{}
	for n := range 2000 {
		m := c.Message(n)
		if len(m.Body) < 1900 || len(m.Body) > 2048 {
			t.Fatalf("body of %d bytes", len(m.Body))
		}
		org := strings.TrimPrefix(m.FromDomain, "mail.")
		if _, ok := c.TXT("_dmarc." + org); !ok {
			t.Fatalf("message %d: no record for %s", n, org)
		}
		if _, ok := c.TXT("_dmarc." + m.FromDomain); ok != (org == m.FromDomain) {
			t.Fatalf("message %d: subdomain %s has a record of its own", n, m.FromDomain)
		}
		var ar string
		for _, h := range m.Headers {
			if h[0] == "Authentication-Results" {
				ar = h[1]
			}
		}
		switch {
		case strings.Contains(ar, "dkim=fail"):
			kinds["fail"]++
		case strings.Contains(ar, "header.d="+espDomain):
			kinds["esp"]++
		case org != m.FromDomain:
			kinds["subdomain"]++
		default:
			kinds["aligned"]++
		}
		rec, _ := c.TXT("_dmarc." + org)
		kinds[strings.TrimSuffix(strings.Fields(rec)[1], ";")]++
	}
	// Each kind is there in about the share the documentation gives.
	for k, want := range map[string]int{"fail": 100, "esp": 100, "subdomain": 180, "aligned": 1620,
		"p=none": 800, "p=quarantine": 600, "p=reject": 600} {
		if got := kinds[k]; got < want*7/10 || got > want*13/10 {
			t.Errorf("%s: %d of 2000 messages, want about %d", k, got, want)
		}
	}
	for name, want := range map[string]bool{"test": true, "d000999.test": true, "_dmarc.d000999.test.": true,
		"d001000.test": false, "mail.d000001.test": false, "d1.test": false, "example.com": false} {
		if c.Exists(name) != want {
			t.Errorf("Exists(%q) = %v", name, !want)
		}
	}
}

func TestWarmMessagesSendFromEveryName(t *testing.T) {
	c := NewCorpus(1000, time.Hour, 2048)
	warm := map[string]bool{}
	for n := range 2 * c.Domains {
		warm[c.WarmMessage(n).FromDomain] = true
	}
	if len(warm) != 2*c.Domains {
		t.Errorf("the warm-up sends from %d names, want %d", len(warm), 2*c.Domains)
	}
	for n := range 20000 {
		if d := c.Message(n).FromDomain; !warm[d] {
			t.Fatalf("message %d comes from %s, which the warm-up does not send from", n, d)
		}
	}
}

func TestDNSServer(t *testing.T) {
	c := NewCorpus(100, 5*time.Minute, 0)
	s, err := StartDNS("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := dnscache.New(dnscache.Config{Nameservers: []string{s.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	txt, err := r.LookupTXT(ctx, "_dmarc.d000007.test")
	if err != nil || len(txt) != 1 || txt[0] != c.Record(7) {
		t.Errorf("TXT: %q, %v", txt, err)
	}
	if _, err := r.LookupTXT(ctx, "_dmarc.mail.d000007.test"); !errors.Is(err, dmarc.ErrNXDomain) {
		t.Errorf("subdomain: %v, want NXDOMAIN", err)
	}
	a, err := r.Lookup(ctx, "_dmarc.mail.d000007.test", dns.TypeTXT)
	if a.TTL <= 0 || a.TTL > 5*time.Minute {
		t.Errorf("negative answer cached for %v (%v), want the SOA's 5m", a.TTL, err)
	}
	if n := s.Queries(); n != 2 {
		t.Errorf("%d queries, want 2", n)
	}
}

// dmarcdMilter runs dmarcd's milter in this process, configured as the
// benchmark configures the daemon, over the corpus's records.
func dmarcdMilter(t *testing.T, c *Corpus) string {
	t.Helper()
	txt := map[string][]string{}
	for i := range c.Domains {
		txt["_dmarc."+c.Domain(i)] = []string{c.Record(i)}
	}
	cfg := &milter.Config{
		AuthServID:         AuthservID,
		TrustedAuthServIDs: []string{TrustedID},
		Policy: milter.Policy{Reject: milter.Reject, Quarantine: milter.Quarantine, TempError: milter.Accept,
			PermError: milter.Accept, MissingFrom: milter.Reject, MissingDKIM: milter.Accept, AddHeader: true, RemoveForged: true,
			RejectReply: milter.Reply{Code: 550, Enhanced: "5.7.1", Text: "rejected by DMARC policy for {domain}"}},
		SPFUpstream: true, DNSBudget: 10 * time.Second, IdleTimeout: time.Minute, WriteTimeout: time.Minute, MaxConnections: 64,
	}
	srv := milter.New(cfg, milter.Deps{Evaluator: &dmarc.Evaluator{Resolver: dmarc.MapResolver{TXT: txt}}},
		&report.MemorySink{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, milter.Strict)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func TestNullMilterNegotiatesLikeDmarcd(t *testing.T) {
	c := NewCorpus(50, time.Hour, 2048)
	dir := t.TempDir()
	null := NewNullServer(false)
	unix, err := net.Listen("unix", filepath.Join(dir, "null.sock"))
	if err != nil {
		t.Fatal(err)
	}
	go null.Serve(unix)
	defer null.Shutdown(context.Background())

	ctx := context.Background()
	n := Drive(ctx, DriveOptions{Target: Target{"unix", filepath.Join(dir, "null.sock")}, Corpus: c, Concurrency: 4, Count: 200})
	d := Drive(ctx, DriveOptions{Target: Target{"tcp", dmarcdMilter(t, c)}, Corpus: c, Concurrency: 4, Count: 200})
	for _, r := range []DriveResult{n, d} {
		if r.Errors != 0 || r.Messages != 200 {
			t.Fatalf("%s: %d messages, %d errors, first: %s", r.Target, r.Messages, r.Errors, r.FirstError)
		}
		if len(r.Latencies) != 200 || r.Percentile(0.5) > r.Percentile(0.99) || r.Percentile(0.99) > r.Max() {
			t.Errorf("%s: latencies %d, p50 %v p99 %v max %v", r.Target, len(r.Latencies), r.Percentile(0.5), r.Percentile(0.99), r.Max())
		}
	}
	if n.Protocol != d.Protocol || n.Negotiated != d.Negotiated {
		t.Errorf("null milter negotiated %v / %v, dmarcd %v / %v", n.Protocol, n.Negotiated, d.Protocol, d.Negotiated)
	}
	if !has(d.NoReply, "helo", "rcpt", "header", "eoh") {
		t.Errorf("dmarcd's no-reply options: %v", d.NoReply)
	}
	if n.Inserted != 200 || n.Actions["accept"] != 200 {
		t.Errorf("null milter: %d headers inserted, actions %v", n.Inserted, n.Actions)
	}
	// dmarcd evaluated the corpus: most pass, a few fail into their policy.
	if d.Actions["accept"] < 170 || d.Actions["reject"]+d.Actions["quarantine"] == 0 || d.Inserted < 170 {
		t.Errorf("dmarcd: actions %v, %d headers inserted", d.Actions, d.Inserted)
	}
}

func TestConfigurationsAreValid(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dmarcd.toml")
	os.WriteFile(path, []byte(DmarcdConfig(dir, "127.0.0.1:53", "127.0.0.1:8893", 400000)), 0o644)
	cfg, warnings, err := config.LoadAuto(path)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("dmarcd.toml: %v %v", err, warnings)
	}
	if len(cfg.Listeners) != 2 || cfg.SPF.SelfCheck || cfg.DNS.CacheSize != 400000 || cfg.TrustedAuthservIDs[0] != TrustedID {
		t.Errorf("dmarcd.toml read as %+v", cfg)
	}
	os.WriteFile(filepath.Join(dir, "public_suffix_list.dat"), []byte(SuffixList), 0o644)
	for _, tr := range []Target{{"unix", filepath.Join(dir, "od.sock")}, {"tcp", "127.0.0.1:8893"}} {
		path := filepath.Join(dir, "opendmarc.conf")
		os.WriteFile(path, []byte(OpenDMARCConfig(dir, tr)), 0o644)
		cfg, _, err := config.LoadAuto(path)
		if err != nil {
			t.Fatalf("opendmarc.conf: %v", err)
		}
		if got := cfg.Listeners[0].Address.String(); got != tr.String() && !strings.HasSuffix(got, tr.Address) {
			t.Errorf("Socket %s read as %s", tr, got)
		}
		if cfg.SPF.SelfCheck || cfg.TrustedAuthservIDs[0] != TrustedID {
			t.Errorf("opendmarc.conf read as %+v", cfg)
		}
	}
}

func TestProc(t *testing.T) {
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Error(err)
	}
	if m, err := MemoryOf(os.Getpid()); err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Errorf("MemoryOf: %+v, %v", m, err)
	}
	if _, err := SystemCPU(); err != nil {
		t.Error(err)
	}
}

func TestChecks(t *testing.T) {
	run := func(server, tr string, rate float64, p99 time.Duration, cpu time.Duration) Run {
		n := int(rate * 10)
		lat := make([]time.Duration, 100)
		for i := range lat {
			lat[i] = p99
		}
		return Run{Server: server, CPU: cpu * time.Duration(n),
			Result: DriveResult{Target: Target{Network: tr}, Messages: n, Elapsed: 10 * time.Second, Latencies: lat,
				NoReply: []string{"helo", "rcpt", "header", "eoh"}}}
	}
	r := &BenchReport{Options: BenchOptions{Transports: []string{"unix", "tcp"}},
		Runs: []Run{
			run("null", "unix", 3000, 10*time.Millisecond, 250*time.Microsecond),
			run("dmarcd", "unix", 2800, 11*time.Millisecond, 300*time.Microsecond),
			run("opendmarc", "unix", 1800, 20*time.Millisecond, 800*time.Microsecond),
			run("null", "tcp", 2000, 10*time.Millisecond, 250*time.Microsecond),
			run("dmarcd", "tcp", 1900, 13*time.Millisecond, 300*time.Microsecond),
			run("opendmarc", "tcp", 380, 50*time.Millisecond, 900*time.Microsecond),
		},
		RSS: Memory{RSS: 120 << 20}, RSSMessages: 100000}
	got := map[string]string{}
	for _, c := range r.Checks() {
		got[c.Name] = c.Verdict + " " + c.Value
	}
	for name, want := range map[string]string{
		"unix: dmarcd/null msg/s":                     "PASS 0.93",
		"unix: dmarcd/OpenDMARC msg/s":                "PASS 1.56",
		"unix: dmarcd/OpenDMARC CPU per message":      "PASS 0.38",
		"unix: dmarcd/null p99 latency":               "PASS 1.10",
		"tcp: dmarcd/OpenDMARC msg/s":                 "PASS 5.00",
		"tcp: dmarcd/null p99 latency":                "MISS 1.30",
		"dmarcd RSS, 100000 From domains cached":      "MISS 120.0 MiB",
		"milter protocol 6 no-reply options (dmarcd)": "PASS helo rcpt header eoh",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	var b strings.Builder
	r.Print(&b)
	if !strings.Contains(b.String(), "MISS  tcp: dmarcd/null p99 latency") {
		t.Errorf("Print:\n%s", b.String())
	}
}
