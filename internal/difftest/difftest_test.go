package difftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment variables between the two runs, and for the operator.
const (
	insideEnv    = "DIFFTEST_INSIDE"    // set in the run inside the namespace
	outEnv       = "DIFFTEST_OUT"       // where the inside run writes the verdicts
	opendmarcEnv = "DIFFTEST_OPENDMARC" // the opendmarc binary; default /usr/sbin/opendmarc
	ciEnv        = "DMARCD_CI"          // set in CI: fail rather than skip
)

// nsPrefix starts the names of the namespaces this test creates.
const nsPrefix = "dmarcd-diff-"

// innerTimeout bounds the run inside the namespace.
const innerTimeout = 3 * time.Minute

// TestDifferential runs the corpus through OpenDMARC and dmarcd in a
// network namespace of its own and compares their verdicts.
func TestDifferential(t *testing.T) {
	if os.Getenv(insideEnv) != "" {
		t.Skip("this is the run inside the namespace")
	}
	opendmarc := requirements(t)
	ns := newNamespace(t)

	out := filepath.Join(t.TempDir(), "verdicts.json")
	ctx, cancel := context.WithTimeout(context.Background(), innerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0],
		"-test.run=^TestDifferentialInside$", "-test.count=1", "-test.v",
		"-test.timeout="+innerTimeout.String())
	cmd.Env = append(os.Environ(), insideEnv+"=1", outEnv+"="+out, opendmarcEnv+"="+opendmarc)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		t.Fatalf("the run inside namespace %s failed (%v):\n%s", ns, err, output.String())
	}
	if testing.Verbose() {
		t.Logf("the run inside namespace %s took %s", ns, time.Since(start).Round(time.Millisecond))
	}

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no verdicts from the inside run: %v\n%s", err, output.String())
	}
	var results []result
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatalf("verdicts: %v", err)
	}
	compareAll(t, buildCorpus(), results)
}

// requirements checks that the test can run here and returns the opendmarc
// binary. Outside CI it skips when something is missing; in CI it fails.
func requirements(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv(ciEnv) != "" {
			t.Fatalf("%s (%s is set, so this is a failure, not a skip)", msg, ciEnv)
		}
		t.Skipf("skipped: %s", msg)
	}
	if os.Geteuid() != 0 {
		missing("the differential test needs root, to create a network namespace and bind port 53 in it")
	}
	bin := os.Getenv(opendmarcEnv)
	if bin == "" {
		bin = "/usr/sbin/opendmarc"
	}
	if _, err := os.Stat(bin); err != nil {
		missing("no opendmarc to compare with (%v); install Debian's opendmarc package or set %s", err, opendmarcEnv)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing("no ip command (iproute2) to create a network namespace: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		missing("ip netns does not work here: %v: %s", err, bytes.TrimSpace(out))
	}
	return bin
}

// newNamespace creates a network namespace with its loopback up and a
// resolv.conf pointing at it, removed when the test ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	removeStaleNamespaces(t)
	ns := nsPrefix + strconv.Itoa(os.Getpid())
	etc := filepath.Join("/etc/netns", ns)
	_, err := os.Stat("/etc/netns")
	madeEtcNetns := errors.Is(err, fs.ErrNotExist)
	// Cleanup first, so that a failure half-way still removes what exists.
	t.Cleanup(func() {
		removeNamespace(t, ns)
		if madeEtcNetns {
			_ = os.Remove("/etc/netns") // only if no other run is using it
		}
	})
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	// One try, short: the only server is on this loopback, and a SERVFAIL
	// it is told to give must reach OpenDMARC as one, not after retries.
	resolv := "# written by dmarcd's internal/difftest\nnameserver 127.0.0.1\noptions timeout:2 attempts:1\n"
	for try := 1; ; try++ {
		// Another run ending may remove /etc/netns between the two steps.
		err = os.MkdirAll(etc, 0o755)
		if err == nil {
			err = os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(resolv), 0o644)
		}
		if err == nil || try == 3 || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func removeNamespace(t testing.TB, ns string) {
	if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		t.Errorf("ip netns delete %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	if err := os.RemoveAll(filepath.Join("/etc/netns", ns)); err != nil {
		t.Errorf("remove /etc/netns/%s: %v", ns, err)
	}
}

// removeStaleNamespaces deletes namespaces (and their /etc/netns
// directories) that runs of this test left behind when they were killed:
// those whose pid is no longer a process.
func removeStaleNamespaces(t *testing.T) {
	names := map[string]bool{}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				names[f[0]] = true
			}
		}
	}
	if entries, err := os.ReadDir("/etc/netns"); err == nil {
		for _, e := range entries {
			names[e.Name()] = true
		}
	}
	for name := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, nsPrefix))
		if !strings.HasPrefix(name, nsPrefix) || err != nil || pid <= 0 || processExists(pid) {
			continue
		}
		t.Logf("removing namespace %s, left behind by a run that was killed", name)
		removeNamespace(t, name)
	}
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}
