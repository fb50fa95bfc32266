package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/dnstest"
	"github.com/dmarcd/dmarcd/internal/smtptest"
	"github.com/dmarcd/dmarcd/report/store"
)

// The environment of a daemon that a test runs as a child process: the
// test binary, run again, serves daemon.Run instead of the tests.
const (
	childConfigEnv = "DMARCD_TEST_DAEMON_CONFIG"
	childOffsetEnv = "DMARCD_TEST_DAEMON_CLOCK_OFFSET" // seconds added to the scheduler's clock
)

func TestMain(m *testing.M) {
	if conf := os.Getenv(childConfigEnv); conf != "" {
		os.Exit(runChild(conf))
	}
	os.Exit(m.Run())
}

// runChild is the daemon of a child process.
func runChild(conf string) int {
	off, _ := strconv.ParseInt(os.Getenv(childOffsetEnv), 10, 64)
	now := func() time.Time { return time.Now().Add(time.Duration(off) * time.Second) }
	if err := Run(context.Background(), Options{ConfigPath: conf, Stderr: os.Stderr, Now: now, ReportPoll: 50 * time.Millisecond}); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// child is a dmarcd running in a child process.
type child struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
}

// startChild runs the daemon of conf in a child process, its scheduler's
// clock offset ahead, and waits until it listens at addr.
func startChild(t *testing.T, conf, addr string, offset time.Duration) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), logs: &lockedBuffer{}}
	c.cmd.Env = append(os.Environ(), childConfigEnv+"="+conf, childOffsetEnv+"="+strconv.FormatInt(int64(offset/time.Second), 10))
	c.cmd.Stderr = c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child log:\n%s", c.logs)
		}
	})
	waitFor(t, "the child daemon to listen", 30*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return c
}

// kill sends SIGKILL: no flush, no clean close, as an OOM kill or a
// power cut would leave things (for dmarcd's part).
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
	}
}

// crashIP is the source address of the i-th message: each message its own
// record, so that a row counted twice would show.
func crashIP(i int) string {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
}

// TestKillDuringLoadLosesOnlyTheFlushWindow kills dmarcd with SIGKILL in
// the middle of a load of mail, restarts it, and checks the store: intact,
// no message counted twice, and what was lost no more than the rows
// accepted within the last flush interval (and the write then under way)
// before the kill. The restarted daemon's scheduler then reports the
// day, once, with the counts that survived; a third start sends nothing.
func TestKillDuringLoadLosesOnlyTheFlushWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a daemon process")
	}
	dir := t.TempDir()
	dns := dnstest.Start(t, "test. 3600 IN SOA ns.test. host.test. 1 3600 600 86400 300",
		`_dmarc.load.test. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@load.test"`)
	relay := smtptest.Start(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	state := filepath.Join(dir, "state")
	const flushInterval = 500 * time.Millisecond
	conf := filepath.Join(dir, "dmarcd.toml")
	toml := fmt.Sprintf(`state_dir = %q
[[listener]]
address = "inet:%d@127.0.0.1"
[dns]
nameservers = [%q]
[log]
level = "warn"
[store]
flush_interval = "%v"
flush_rows = 2000
queue_size = 20000
[reports]
enabled = true
org_name = "crash test"
from_address = "dmarc-reports@reporter.test"
spread = "0s"
[reports.relay]
address = %q
starttls = "none"
`, state, port, dns.Addr(), flushInterval, relay.Addr())
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}

	c := startChild(t, conf, addr, 0)
	// The load: clients send until the daemon dies, each message with a
	// source address of its own. acked[i] is when message i was answered.
	var next atomic.Int64
	var mu sync.Mutex
	acked := map[int]time.Time{}
	var wg sync.WaitGroup
	loadStart := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if _, err := milterMessage(addr, crashIP(i), "load.test", "Q"+strconv.Itoa(i)); err != nil {
					return // the daemon is gone
				}
				mu.Lock()
				acked[i] = time.Now()
				mu.Unlock()
			}
		}()
	}
	// Long enough for the flush window to be a part of the load only.
	waitFor(t, "some load", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 1500 && time.Since(loadStart) > 4*flushInterval+3*time.Second
	})
	time.Sleep(300 * time.Millisecond) // kill somewhere between two flushes
	killedAt := time.Now()
	c.kill()
	wg.Wait()

	// The store after the crash, opened as the restarted daemon will.
	db, err := store.OpenSQLite(context.Background(), filepath.Join(state, store.DefaultFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(context.Background()); err != nil {
		t.Errorf("the store is damaged: %v", err)
	}
	stored := map[string]int64{}
	day := store.Period{Begin: time.Now().UTC().Add(-24 * time.Hour).Truncate(24 * time.Hour), End: time.Now().UTC().Add(48 * time.Hour).Truncate(24 * time.Hour)}
	if err := db.Records(context.Background(), "load.test", day, func(r store.Record) error {
		stored[r.SourceIP.String()] += r.Count
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var lost, recent int
	for ip, n := range stored {
		if n != 1 {
			t.Errorf("message from %s counted %d times", ip, n)
		}
	}
	for i, at := range acked {
		if _, ok := stored[crashIP(i)]; !ok {
			lost++
		}
		// What a crash may lose: rows accepted within the last flush
		// interval, plus those of the write under way (two seconds more
		// for a slow write under -race on a busy machine).
		if killedAt.Sub(at) <= flushInterval+2*time.Second {
			recent++
		}
	}
	t.Logf("acknowledged %d messages, stored %d, lost %d; %d were acknowledged in the last %v before the kill",
		len(acked), len(stored), lost, recent, flushInterval+2*time.Second)
	if lost > recent {
		t.Errorf("lost %d rows, more than the %d accepted within the flush window", lost, recent)
	}
	if lost > 2*20000 {
		t.Errorf("lost %d rows, more than twice the queue size", lost)
	}

	// Restart two days later: the day is reported, once. (Messages
	// stored but never acknowledged were answered as the daemon died.)
	second := startChild(t, conf, addr, 48*time.Hour)
	relay.Wait(t, 1, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // a load across midnight UTC makes two
	second.kill()
	msgs := relay.Messages()
	var reported int64
	for _, m := range msgs {
		reported += readReportMail(t, m.Data).Report.total()
	}
	if want := int64(len(stored)); reported != want {
		t.Errorf("the reports count %d messages, the store %d", reported, want)
	}
	before := len(relay.Messages())
	third := startChild(t, conf, addr, 72*time.Hour)
	time.Sleep(time.Second)
	third.kill()
	if n := len(relay.Messages()); n != before {
		t.Errorf("%d reports sent again after another restart", n-before)
	}
}

// TestSIGTERMWritesEveryQueuedRow stops dmarcd with SIGTERM while rows
// wait in the Writer's queue (a flush interval of an hour): none is lost.
func TestSIGTERMWritesEveryQueuedRow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a daemon process")
	}
	dir := t.TempDir()
	dns := dnstest.Start(t, "test. 3600 IN SOA ns.test. host.test. 1 3600 600 86400 300",
		`_dmarc.load.test. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@load.test"`)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	state := filepath.Join(dir, "state")
	conf := filepath.Join(dir, "dmarcd.toml")
	toml := fmt.Sprintf(`state_dir = %q
[[listener]]
address = "inet:%d@127.0.0.1"
[dns]
nameservers = [%q]
[store]
flush_interval = "1h"
flush_rows = 100000
[reports]
close_delay = "2h"
`, state, port, dns.Addr())
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, conf, addr, 0)
	const n = 300
	for i := range n {
		if _, err := milterMessage(addr, crashIP(i), "load.test", "Q"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("dmarcd exited with %v", err)
	}
	if !strings.Contains(c.logs.String(), "report rows written") {
		t.Errorf("no word of the final write in the log")
	}
	if got := storeMessages(t, state); got != n {
		t.Errorf("%d rows in the store after SIGTERM, %d messages were answered", got, n)
	}
}
