package difftest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/daemon"
	"github.com/dmarcd/dmarcd/internal/dnstest"
)

// workers is how many messages are in flight at once, to each milter.
const workers = 8

// configs are the configurations besides the shared one that messages
// name in Config: lines added to the shared opendmarc.conf. Each runs its
// own pair of milters.
var configs = map[string]string{
	"strict": "RejectMultiValueFrom    true\nRequiredHeaders         true\n",
}

// pair is the addresses of the two milters of one configuration.
type pair struct{ od, dd string }

// TestDifferentialInside is the half of TestDifferential that runs inside
// the network namespace: it starts the DNS server, OpenDMARC and dmarcd,
// sends the corpus through both, and writes the verdicts for the outside
// half to compare.
func TestDifferentialInside(t *testing.T) {
	if os.Getenv(insideEnv) == "" {
		t.Skip("runs only inside the network namespace that TestDifferential creates")
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil || !strings.Contains(string(resolv), "difftest") {
		t.Fatalf("/etc/resolv.conf is not the namespace's (ip netns exec should have mounted it): %v\n%s", err, resolv)
	}
	c := buildCorpus()
	dns := dnstest.StartOn(t, "127.0.0.1:53", c.zone...)
	for name, rcode := range c.faults {
		dns.Fail(name, rcode)
	}

	pairs := map[string]pair{}
	for name, extra := range configs {
		pairs[name] = startPair(t, extra)
	}
	pairs[""] = startPair(t, "")

	start := time.Now()
	results := make([]result, len(c.messages))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				m := c.messages[i]
				qid := fmt.Sprintf("DIFF%04d", i)
				p := pairs[m.Config]
				results[i] = result{Index: i, Name: m.Name,
					OpenDMARC: send(p.od, m, qid),
					Dmarcd:    send(p.dd, m, qid)}
			}
		})
	}
	for i := range c.messages {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d messages through both milters in %s", len(c.messages), time.Since(start).Round(time.Millisecond))

	data, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(outEnv), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startPair writes the shared configuration with extra lines added, and
// starts OpenDMARC and dmarcd on it.
func startPair(t *testing.T, extra string) pair {
	t.Helper()
	dir := t.TempDir()
	conf, odAddr := writeConfig(t, dir, extra)
	startOpenDMARC(t, os.Getenv(opendmarcEnv), conf, odAddr, dir)
	return pair{od: odAddr, dd: startDmarcd(t, conf, dir)}
}

// writeConfig writes the shared opendmarc.conf, with extra lines at its
// end, and the public suffix list it names, and returns the
// configuration's path and the address of its Socket, where OpenDMARC
// listens.
func writeConfig(t *testing.T, dir, extra string) (string, string) {
	t.Helper()
	psl := filepath.Join(dir, "public_suffix_list.dat")
	if err := os.WriteFile(psl, []byte(suffixList), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "opendmarc.conf")
	port := freePort(t)
	text := fmt.Sprintf(`# the configuration OpenDMARC and dmarcd share in internal/difftest
AuthservID              %s
TrustedAuthservIDs      %s
RejectFailures          true
HoldQuarantinedMessages true
SPFSelfValidate         false
PublicSuffixList        %s
Socket                  inet:%d@127.0.0.1
Syslog                  false
%s`, authservID, trustedID, psl, port, extra)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf, fmt.Sprintf("127.0.0.1:%d", port)
}

// startOpenDMARC runs opendmarc in the foreground, on the Socket of conf
// (addr), and returns once it accepts connections. Its process id goes to
// a file of its own (-P): dmarcd reads the same configuration and would
// write and remove a PidFile named there.
func startOpenDMARC(t *testing.T, bin, conf, addr, dir string) {
	t.Helper()
	cmd := exec.Command(bin, "-f", "-c", conf, "-P", filepath.Join(dir, "opendmarc.pid"))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start opendmarc: %v", err)
	}
	// exited is closed when the process has ended, waitErr is then its
	// exit status.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Only the process this test started, by its pid. It has nothing
		// to save, and libmilter takes 4s to act on SIGTERM: kill it.
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() && out.Len() > 0 {
			t.Logf("opendmarc's output:\n%s", out.String())
		}
	})
	waitListening(t, "opendmarc", addr, exited, func() error { return waitErr }, &out)
}

// startDmarcd runs dmarcd in this process with the same configuration, on
// a listener of its own, and returns its address.
func startDmarcd(t *testing.T, conf, dir string) string {
	t.Helper()
	logs := &lockedBuffer{}
	ready := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			ConfigPath: conf,
			Listen:     []string{fmt.Sprintf("inet:%d@127.0.0.1", freePort(t))},
			StateDir:   filepath.Join(dir, "dmarcd"),
			Stderr:     logs,
			Ready:      func(a []net.Addr) { ready <- a[0] },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dmarcd: %v", err)
		}
		if t.Failed() {
			t.Logf("dmarcd's log:\n%s", logs.String())
		}
	})
	select {
	case a := <-ready:
		return a.String()
	case err := <-done:
		t.Fatalf("dmarcd did not start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("dmarcd did not start in 10s:\n%s", logs.String())
	}
	return ""
}

// waitListening waits until addr accepts connections or the process ends.
func waitListening(t *testing.T, what, addr string, exited <-chan struct{}, status func() error, out *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start (%v):\n%s", what, status(), out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s after 10s: %v\n%s", what, addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a TCP port of 127.0.0.1 nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
