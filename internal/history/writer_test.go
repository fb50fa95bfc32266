package history

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv makes the test binary a writer process: "path|writer|count".
const helperEnv = "DMARCD_HISTORY_TEST_WRITER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperWriter(spec))
	}
	os.Exit(m.Run())
}

func helperWriter(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad", helperEnv)
		return 2
	}
	count, _ := strconv.Atoi(parts[2])
	w, err := Open(parts[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := 0; i < count; i++ {
		if err := w.Write(bigRecord(parts[1], i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// bigRecord is record i of a writer, some 9 KB long: well past PIPE_BUF,
// so that a record written in pieces would show.
func bigRecord(writer string, i int) Record {
	r := Record{
		JobID:        fmt.Sprintf("%s-%d", writer, i),
		Reporter:     "mx-" + writer,
		Received:     t0.Add(time.Duration(i) * time.Second),
		IP:           netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}),
		From:         "example.com",
		MailFrom:     "example.com",
		SPF:          "pass",
		Result:       "pass",
		PolicyDomain: "example.com",
		Pct:          100, ADKIM: "r", ASPF: "r", P: "reject",
		AlignDKIM: Aligned, AlignSPF: Aligned,
	}
	for j := 0; j < 200; j++ {
		r.RUA = append(r.RUA, fmt.Sprintf("mailto:dmarc-%s-%d-%03d@reports.example.net", writer, i, j))
	}
	return r
}

// splitRecords cuts a history file at its job lines and checks that each
// piece is exactly the record its job names. It returns the job ids seen.
func splitRecords(t *testing.T, data []byte, want func(job string) (Record, bool)) []string {
	t.Helper()
	var jobs []string
	if len(data) == 0 {
		return nil
	}
	if !bytes.HasPrefix(data, []byte("job ")) {
		t.Fatalf("file does not start with a job line: %.80q", data)
	}
	rest := data
	for len(rest) > 0 {
		end := bytes.Index(rest[1:], []byte("\njob "))
		var rec []byte
		if end < 0 {
			rec, rest = rest, nil
		} else {
			rec, rest = rest[:end+2], rest[end+2:]
		}
		line, _, _ := bytes.Cut(rec, []byte("\n"))
		job := strings.TrimPrefix(string(line), "job ")
		r, ok := want(job)
		if !ok {
			t.Errorf("unexpected record %q", job)
			continue
		}
		if !bytes.Equal(rec, Format(r)) {
			t.Errorf("record %s is damaged (%d bytes, want %d)", job, len(rec), len(Format(r)))
		}
		jobs = append(jobs, job)
	}
	return jobs
}

// wantBig finds a bigRecord by its job id "writer-i".
func wantBig(job string) (Record, bool) {
	i := strings.LastIndexByte(job, '-')
	if i < 0 {
		return Record{}, false
	}
	n, err := strconv.Atoi(job[i+1:])
	if err != nil {
		return Record{}, false
	}
	return bigRecord(job[:i], n), true
}

func TestWriterAppends(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "opendmarc.dat")
	if err := os.WriteFile(path, []byte("job old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	cs := cases()
	for _, c := range cs[:2] {
		if err := w.Write(c.rec); err != nil {
			t.Fatal(err)
		}
	}
	// Reporter and Received are filled in when missing.
	before := time.Now().Unix()
	if err := w.Write(Record{JobID: "fill", From: "example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "job old\n" + string(Format(cs[0].rec)) + string(Format(cs[1].rec))
	if !strings.HasPrefix(string(got), want) {
		t.Fatalf("file does not hold the old content then the records:\n%s", got)
	}
	last := string(got[len(want):])
	host, _ := os.Hostname()
	if !strings.Contains(last, "\nreporter "+host+"\n") {
		t.Errorf("reporter not filled with host name %q:\n%s", host, last)
	}
	var received int64
	for _, l := range strings.Split(last, "\n") {
		if v, ok := strings.CutPrefix(l, "received "); ok {
			received, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if received < before || received > time.Now().Unix() {
		t.Errorf("received %d not filled with the current time", received)
	}
}

func TestWriterCreatesWithMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.dat")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal("Open did not create the file:", err)
	}
	if perm := st.Mode().Perm(); perm&^FileMode != 0 {
		t.Errorf("mode %v, want at most %v", perm, os.FileMode(FileMode))
	}
	if _, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir", "x.dat")); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

func TestWriterClose(t *testing.T) {
	w, err := Open(filepath.Join(t.TempDir(), "h.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Write(Record{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := w.Reopen(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reopen after Close: %v, want ErrClosed", err)
	}
}

// TestWriterConcurrent has goroutines sharing one Writer, several Writers
// on the same path and other processes write at once; every record must
// come out whole and exactly once.
func TestWriterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "opendmarc.dat")
	const (
		goroutines = 8
		writers    = 3
		procs      = 3
		each       = 40
	)
	shared, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines+writers+procs)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := shared.Write(bigRecord(fmt.Sprintf("g%d", g), i)); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	for n := 0; n < writers; n++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			w, err := Open(path)
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			for i := 0; i < each; i++ {
				if err := w.Write(bigRecord(fmt.Sprintf("w%d", n), i)); err != nil {
					errs <- err
					return
				}
			}
		}(n)
	}
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|p%d|%d", helperEnv, path, p, each))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer process %d: %v: %s", p, err, out)
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := shared.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	jobs := splitRecords(t, data, wantBig)
	checkAllOnce(t, jobs, map[string]int{"g": goroutines, "w": writers, "p": procs}, each)
	// And the importer takes it all.
	res := importHistory(bytes.NewReader(data))
	if len(res.msgs) != len(jobs) || len(res.warnings)+len(res.dropped) > 0 {
		t.Errorf("importer: %d messages of %d, warnings %v, dropped %v", len(res.msgs), len(jobs), res.warnings, res.dropped)
	}
}

// checkAllOnce checks that jobs holds each prefix<n>-<i> exactly once.
func checkAllOnce(t *testing.T, jobs []string, prefixes map[string]int, each int) {
	t.Helper()
	seen := map[string]int{}
	for _, j := range jobs {
		seen[j]++
	}
	total := 0
	for p, n := range prefixes {
		for k := 0; k < n; k++ {
			for i := 0; i < each; i++ {
				job := fmt.Sprintf("%s%d-%d", p, k, i)
				if seen[job] != 1 {
					t.Errorf("record %s written %d times", job, seen[job])
				}
				total++
			}
		}
	}
	if len(jobs) != total {
		t.Errorf("%d records, want %d", len(jobs), total)
	}
}

// TestWriterFollowsRename rotates the file the way cron jobs around
// OpenDMARC do (mv, then import the moved file) while records are being
// written: nothing is lost, nothing is split between files.
func TestWriterFollowsRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "opendmarc.dat")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 4, 60
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := w.Write(bigRecord(fmt.Sprintf("g%d", g), i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var rotated []string
	for n := 0; ; n++ {
		select {
		case <-done:
		case <-time.After(2 * time.Millisecond):
			old := filepath.Join(dir, fmt.Sprintf("opendmarc.dat.%d", n))
			if err := os.Rename(path, old); err == nil {
				rotated = append(rotated, old)
			}
			continue
		}
		break
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, f := range append(rotated, path) {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) && f == path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, splitRecords(t, data, wantBig)...)
	}
	if len(rotated) < 2 {
		t.Logf("only %d rotations happened during the writes", len(rotated))
	}
	checkAllOnce(t, jobs, map[string]int{"g": goroutines}, each)
}

// TestWriterReopen: after a rename and Reopen, records go to the new file.
func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.dat")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, b := cases()[0].rec, cases()[1].rec
	if err := w.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !bytes.Equal(old, Format(a)) || !bytes.Equal(cur, Format(b)) {
		t.Errorf("after Reopen:\nold file:\n%s\nnew file:\n%s", old, cur)
	}
}

// TestWriterTruncated: a rotation that truncates in place (copytruncate,
// "> opendmarc.dat") needs nothing: the next record starts the file.
func TestWriterTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.dat")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, b := cases()[0].rec, cases()[1].rec
	if err := w.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, Format(b)) {
		t.Errorf("after truncation the file holds:\n%q", got)
	}
}
