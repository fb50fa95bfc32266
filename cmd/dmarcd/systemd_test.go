package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on configs/dmarcd.service
// with ExecStart pointing at the binary just built; any warning fails.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("systemd-analyze is missing in CI; .ci/run installs systemd")
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("../../configs/dmarcd.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/sbin/dmarcd", build(t))
	path := filepath.Join(t.TempDir(), "dmarcd.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
