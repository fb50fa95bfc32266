//go:build unix

package store

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
)

func TestALockWhoseUnlockIsDroppedIsKept(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lease-x")
	func() {
		if _, err := lockFile(p); err != nil { // the unlock func dropped
			t.Fatal(err)
		}
	}()
	// The garbage collector runs the finalizers of unreachable files,
	// which close them and so would drop their flocks.
	for range 3 {
		runtime.GC()
	}
	if _, err := lockFile(p); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("lockFile after the first's unlock was dropped and GC ran = %v, want ErrLeaseHeld", err)
	}
}
