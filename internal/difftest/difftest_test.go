package difftest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/internal/netns"
	"github.com/dmarcd/dmarcd/internal/testenv"
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
		if testenv.InCI() {
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
	if why := netns.Unavailable(); why != "" {
		missing("cannot create a network namespace: %s", why)
	}
	return bin
}

// newNamespace creates a network namespace with its loopback up and a
// resolv.conf pointing at it, removed when the test ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns, stale, err := netns.Create(nsPrefix, "internal/difftest")
	for _, name := range stale {
		t.Logf("removed namespace %s, left behind by a run that was killed", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Remove(); err != nil {
			t.Error(err)
		}
	})
	return ns.Name
}
