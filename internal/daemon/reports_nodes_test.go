package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/dnstest"
	"github.com/dmarcd/dmarcd/internal/smtptest"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// node is one dmarcd running in this process.
type node struct {
	addr string
	logs *lockedBuffer
	stop func()
}

// startNode runs daemon.Run with the configuration toml (a listener on a
// free port is added) and returns when it listens.
func startNode(t *testing.T, toml string, clk *offsetClock) *node {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "dmarcd.toml")
	toml = fmt.Sprintf("state_dir = %q\n[[listener]]\naddress = \"inet:%d@127.0.0.1\"\n", filepath.Join(dir, "state"), freePort(t)) + toml
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &node{logs: &lockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: conf, Stderr: n.logs, Now: clk.Now, ReportPoll: 20 * time.Millisecond,
			Ready: func(a []net.Addr) { ready <- a[0] }})
	}()
	select {
	case a := <-ready:
		n.addr = a.String()
	case err := <-done:
		t.Fatalf("dmarcd did not start: %v\n%s", err, n.logs)
	case <-time.After(20 * time.Second):
		t.Fatal("dmarcd did not start in 20s")
	}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("dmarcd: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("dmarcd log:\n%s", n.logs)
		}
	})
	return n
}

// TestTwoNodesOnOnePostgreSQLSendOneReportPerDomainAndPeriod runs two
// dmarcd daemons (milter, Writer and scheduler each) on one PostgreSQL
// database, drives mail through both milters, and checks that each
// domain's period is reported once, counting the mail of both nodes. The
// milters are driven with go-milter's client rather than through Postfix:
// what is under test is the store and the lease the two nodes share, and
// the client gives each node its own exact share of the mail.
func TestTwoNodesOnOnePostgreSQLSendOneReportPerDomainAndPeriod(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	dns := dnstest.Start(t, "test. 3600 IN SOA ns.test. host.test. 1 3600 600 86400 300",
		`_dmarc.a.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@a.test"`,
		`_dmarc.b.test. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@b.test"`,
		`_dmarc.c.test. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@c.test"`)
	relay := smtptest.Start(t)
	clk := &offsetClock{}
	toml := fmt.Sprintf(`
[dns]
nameservers = [%q]
[store]
driver = "postgres"
dsn = %q
flush_interval = "100ms"
[reports]
enabled = true
org_name = "two nodes"
from_address = "dmarc-reports@reporter.test"
spread = "0s"
[reports.relay]
address = %q
starttls = "none"
`, dns.Addr(), dsn, relay.Addr())
	nodes := []*node{startNode(t, toml, clk), startNode(t, toml, clk)}

	domains := []string{"a.test", "b.test", "c.test"}
	perNode := []int{5, 7}
	var wg sync.WaitGroup
	for i, n := range nodes {
		for _, d := range domains {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range perNode[i] {
					if _, err := milterMessage(n.addr, fmt.Sprintf("192.0.2.%d", 10*i+k%3+1), d, fmt.Sprintf("Q%d%s%d", i, d, k)); err != nil {
						t.Errorf("node %d, %s: %v", i, d, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	want := int64(perNode[0] + perNode[1])
	db, err := store.OpenPostgres(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	total := func() int64 {
		us, err := db.Unreported(context.Background(), store.UnreportedQuery{Before: time.Now().Add(48 * time.Hour), All: true, Messages: true})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, u := range us {
			for _, h := range u.Hours {
				n += h.Messages
			}
		}
		return n
	}
	waitFor(t, "every row in the database", 10*time.Second, func() bool { return total() == want*int64(len(domains)) })

	clk.Advance(48 * time.Hour)
	relay.Wait(t, len(domains), 20*time.Second)
	time.Sleep(time.Second) // both schedulers poll many times more
	got := map[string][]int64{}
	for _, m := range relay.Messages() {
		rm := readReportMail(t, m.Data)
		got[rm.Report.Policy.Domain] = append(got[rm.Report.Policy.Domain], rm.Report.total())
	}
	for _, d := range domains {
		var sum int64
		for _, n := range got[d] {
			sum += n
		}
		// Mail sent just before midnight UTC falls in two periods.
		if len(got[d]) < 1 || len(got[d]) > 2 || sum != want {
			t.Errorf("%s: reports counting %v, want one per period adding up to %d", d, got[d], want)
		}
		reps, err := db.Reports(context.Background(), store.ReportFilter{Domain: d})
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) != len(got[d]) {
			t.Errorf("%s: %d reports in the database, %d mailed", d, len(reps), len(got[d]))
		}
	}
	senders := 0
	for _, n := range nodes {
		if strings.Contains(n.logs.String(), "this node now sends the aggregate reports") {
			senders++
		}
	}
	if senders != 1 {
		t.Errorf("%d nodes took the sender lease, want 1", senders)
	}

	t.Run("the other node takes over when the sender stops, and sends nothing twice", func(t *testing.T) {
		var holder, other *node
		for _, n := range nodes {
			if strings.Contains(n.logs.String(), "this node now sends") {
				holder = n
			} else {
				other = n
			}
		}
		holder.stop()
		waitFor(t, "the other node to take the lease", 20*time.Second, func() bool {
			return strings.Contains(other.logs.String(), "this node now sends the aggregate reports")
		})
		before := len(relay.Messages())
		clk.Advance(24 * time.Hour)
		time.Sleep(time.Second)
		if n := len(relay.Messages()); n != before {
			t.Errorf("%d more reports after the takeover", n-before)
		}
	})
}
