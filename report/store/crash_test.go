package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// The child process of TestKillDuringLoad writes through a Writer with
// these settings.
const (
	crashEnv       = "DMARCD_STORE_CRASH_CHILD" // the database path
	crashQueue     = 10_000
	crashFlushRows = 1_000
	crashInterval  = 50 * time.Millisecond
	crashChunk     = 1_000 // rows between progress lines
)

// crashRow is the i-th row the child writes: every row its own record, so
// that a row counted twice or lost shows.
func crashRow(i int) report.Row {
	var a [16]byte
	copy(a[:], netip.MustParseAddr("2001:db8::").AsSlice())
	a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return storetest.Row("example.com", storetest.T0.Add(time.Duration(i/5_000)*time.Hour), netip.AddrFrom16(a).String())
}

func crashIndex(a netip.Addr) int {
	b := a.As16()
	return int(b[12])<<24 | int(b[13])<<16 | int(b[14])<<8 | int(b[15])
}

// TestCrashChild is the process that TestKillDuringLoad kills; alone, it
// skips.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("the child of TestKillDuringLoad")
	}
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, path, store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := db.TryLease(ctx, "sender")
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx) // never reached: the parent kills this process
	fmt.Println("lease")
	w := store.NewWriter(db, store.WriterOptions{QueueSize: crashQueue, FlushRows: crashFlushRows, FlushInterval: crashInterval, Logger: quiet})
	for i := 0; ; i++ {
		if i%crashChunk == 0 {
			// Stay below the queue's size: rows dropped on purpose
			// would look like rows lost.
			for w.Stats().Queued > crashQueue/2 {
				time.Sleep(time.Millisecond)
			}
			// Up to i+crashChunk rows may be added from here on, and so
			// many are committed.
			st := w.Stats()
			fmt.Printf("progress %d %d %d\n", i+crashChunk, st.Written, st.Dropped)
		}
		w.Add(crashRow(i))
	}
}

// TestKillDuringLoad kills a process with SIGKILL while it writes rows
// through a Writer into SQLite, then opens the database: it must be
// intact, hold every row committed before the kill, no row twice, and
// lose at most the rows that were queued or being written.
func TestKillDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process and loads it")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), store.DefaultFile)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	var mu sync.Mutex
	var maxAdded, written, dropped int
	leased := make(chan struct{})
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "lease" {
				close(leased)
				continue
			}
			var a, w, d int
			if _, err := fmt.Sscanf(line, "progress %d %d %d", &a, &w, &d); err == nil {
				mu.Lock()
				maxAdded, written, dropped = a, w, d
				mu.Unlock()
			}
		}
	}()
	select {
	case <-leased:
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not start")
	}
	// The lease is held by the child, across processes.
	db, err := store.OpenSQLite(ctx, path, store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.TryLease(ctx, "sender"); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("TryLease while the child holds it = %v, want ErrLeaseHeld", err)
	}
	db.Close()

	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		w := written
		mu.Unlock()
		if w >= 10_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d rows written in a minute", w)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond) // anywhere in a flush cycle
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	<-eof
	mu.Lock()
	defer mu.Unlock()
	if dropped != 0 {
		t.Fatalf("the child dropped %d rows", dropped)
	}

	db, err = store.OpenSQLite(ctx, path, store.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer db.Close()
	if err := db.Check(ctx); err != nil {
		t.Fatalf("after kill: %v", err)
	}
	seen := map[int]bool{}
	all := store.Period{Begin: storetest.T0, End: storetest.T0.Add(1000 * time.Hour)}
	err = db.Records(ctx, "example.com", all, func(r store.Record) error {
		i := crashIndex(r.SourceIP)
		if r.Count != 1 || seen[i] {
			return fmt.Errorf("row %d counted %d times", i, r.Count)
		}
		seen[i] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored := len(seen)
	for i := range stored {
		if !seen[i] {
			t.Fatalf("row %d missing among the %d stored: not the rows first added", i, stored)
		}
	}
	lost := maxAdded - stored
	t.Logf("killed after adding at most %d rows: %d stored, %d committed at the last progress line, at most %d lost",
		maxAdded, stored, written, lost)
	if stored < written {
		t.Errorf("%d rows stored, fewer than the %d committed", stored, written)
	}
	if stored > maxAdded {
		t.Errorf("%d rows stored, more than the %d added", stored, maxAdded)
	}
	// What the Writer documents: the queue and the write in progress, at
	// most 2 × QueueSize.
	if lost > 2*crashQueue {
		t.Errorf("%d rows lost, more than 2 × the queue of %d", lost, crashQueue)
	}
	l, err := db.TryLease(ctx, "sender")
	if err != nil {
		t.Errorf("the dead child's lease is still held: %v", err)
	} else {
		l.Release(ctx)
	}
	storetest.Ingest(t, db, storetest.Row("example.com", storetest.T0, "192.0.2.1"))
	if err := db.Check(ctx); err != nil {
		t.Errorf("after writing again: %v", err)
	}
}
