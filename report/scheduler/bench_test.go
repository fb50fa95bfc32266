package scheduler

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// BenchmarkBuildReport measures building one day's report of a domain
// with 1,000,000 messages over 10,000 records, through the SQLite store and
// aggregate.Write: creating the report (once, logged), then per iteration
// streaming its records into RFC 7489 XML, gzip and a spool file: the
// frozen records of the report (what is sent), and the live records of
// the day summed over its 24 hourly counts (what preview and dry runs
// read). It reports the peak RSS of the process while building.
func BenchmarkBuildReport(b *testing.B) {
	ctx := context.Background()
	day := store.Period{Begin: monday, End: monday.Add(Daily)}
	db, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "dmarcd.db"), store.Options{Reporter: "Bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	keys := make([]store.Key, 10_000)
	for i := range keys {
		keys[i] = store.KeyOf(storetest.Row("example.com", monday, fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
	}
	pub := storetest.Policy("example.com")
	var batch store.Batch
	for i := range 1_000_000 {
		batch.AddKey(keys[i%len(keys)], monday.Add(time.Duration((i/len(keys))%24)*time.Hour), 1, pub)
		if batch.Rows() == 100_000 {
			if err := db.Ingest(ctx, &batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	b.Logf("1,000,000 rows over 10,000 keys ingested in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	rep, _, err := db.CreateReport(ctx, store.NewReport{Domain: "example.com", Period: day,
		Destinations: []store.Destination{{Address: "dmarc@example.com"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("report created (records frozen) in %v", time.Since(start).Round(time.Millisecond))

	cfg := testConfig()
	c, err := normalize(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := &Scheduler{st: db}
	for _, src := range []struct {
		name string
		src  source
	}{
		{"frozen records of the created report", s.reportSource(rep)},
		{"live records summed over the hours (preview, dry run)", s.liveSource(&c, "example.com", day, pub, monday)},
	} {
		b.Run(src.name, func(b *testing.B) {
			dir := b.TempDir()
			runtime.GC()
			debug.FreeOSMemory()
			before := procStatus("VmRSS")
			resetPeakRSS()
			var size int64
			for b.Loop() {
				built, err := c.build(ctx, dir, src.src, aggregate.RFC7489)
				if err != nil {
					b.Fatal(err)
				}
				size = built.size
				os.Remove(built.path)
			}
			b.ReportMetric(float64(size)/(1<<10), "KiB-gzip")
			b.ReportMetric(float64(before)/1024, "MiB-RSS-before")
			b.ReportMetric(float64(procStatus("VmHWM"))/1024, "MiB-RSS-peak")
		})
	}
}

// procStatus returns a field of /proc/self/status in KiB, 0 where there is
// none.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux).
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
