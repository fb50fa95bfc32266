package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenOnUnixSockets(t *testing.T) {
	t.Run("a stale socket from a previous run is replaced", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "d.sock")
		old, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close()
		ln, err := Listen("unix", p, SocketPerms{Mode: 0o600})
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		defer ln.Close()
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("a live socket is left alone", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "d.sock")
		live, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		if _, err := Listen("unix", p, SocketPerms{}); err == nil || !strings.Contains(err.Error(), "another process") {
			t.Errorf("Listen over a live socket: %v", err)
		}
	})
	t.Run("a file that is not a socket is never removed", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "d.sock")
		os.WriteFile(p, []byte("precious"), 0o644)
		if _, err := Listen("unix", p, SocketPerms{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Listen over a file: %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "precious" {
			t.Error("the file was touched")
		}
	})
	t.Run("the owner and group may be numeric", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "sub", "d.sock")
		ln, err := Listen("unix", p, SocketPerms{Owner: "0", Group: "0", Mode: 0o660})
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		ln.Close()
	})
	t.Run("an unknown group is an error", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "d.sock")
		if _, err := Listen("unix", p, SocketPerms{Group: "no-such-group-dmarcd"}); err == nil {
			t.Error("no error for an unknown group")
		}
	})
}
