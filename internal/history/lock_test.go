//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package history

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// importerLock takes the shared lock opendmarc-import holds while it reads.
func importerLock(t *testing.T, path string) (release func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// TestWriterWaitsForImporter: while opendmarc-import reads the file under
// its shared lock, a record waits, as OpenDMARC's did, and is then written.
func TestWriterWaitsForImporter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "opendmarc.dat")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	release := importerLock(t, path)
	done := make(chan error, 1)
	rec := cases()[0].rec
	go func() { done <- w.Write(rec) }()
	select {
	case err := <-done:
		release()
		t.Fatalf("Write returned (%v) while the importer held its lock", err)
	case <-time.After(100 * time.Millisecond):
	}
	if data, _ := os.ReadFile(path); len(data) != 0 {
		t.Errorf("record written under the importer's lock")
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked after the importer let go")
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, Format(rec)) {
		t.Errorf("file holds %q", data)
	}
}

// TestWriterRotationDuringImport is the mv-then-import cron job: the file
// is renamed and imported while a record waits for the lock. The record
// must go to the new file, not to the one being imported (and then
// deleted), which is where OpenDMARC would have put it.
func TestWriterRotationDuringImport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "opendmarc.dat")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first, second := cases()[0].rec, cases()[1].rec
	if err := w.Write(first); err != nil {
		t.Fatal(err)
	}
	moved := path + ".import"
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	release := importerLock(t, moved)
	done := make(chan error, 1)
	go func() { done <- w.Write(second) }()
	time.Sleep(50 * time.Millisecond)
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(moved)
	cur, _ := os.ReadFile(path)
	if !bytes.Equal(old, Format(first)) {
		t.Errorf("the imported file changed:\n%s", old)
	}
	if !bytes.Equal(cur, Format(second)) {
		t.Errorf("the new file holds:\n%s", cur)
	}
}
