package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report"
	"github.com/dmarcd/dmarcd/report/store"
	"github.com/dmarcd/dmarcd/report/store/storetest"
)

// BenchmarkIngest measures rows per second through a Writer into each
// store, as the milter sends them: rows over 10,000 distinct keys of one
// domain or of 10,000 domains (a key and an hour row each, as in make
// bench), or each row a key of its own (nothing to roll up: the worst
// case).
func BenchmarkIngest(b *testing.B) {
	for _, d := range drivers {
		for _, c := range []struct {
			name          string
			keys, domains int
		}{{"keys=10000", 10_000, 1}, {"keys=10000/domains=10000", 10_000, 10_000}, {"keys=unique", 0, 1}} {
			keys := c.keys
			b.Run(d.name+"/"+c.name, func(b *testing.B) {
				d.need(b)
				db := d.open(b, store.Options{Logger: quiet})
				rows := make([]report.Row, 10_000)
				for i := range rows {
					domain := "example.com"
					if c.domains > 1 {
						domain = fmt.Sprintf("d%d.example", i%c.domains)
					}
					rows[i] = storetest.Row(domain, time.Now(), fmt.Sprintf("192.0.%d.%d", i/256, i%256))
				}
				w := store.NewWriter(db, store.WriterOptions{Logger: quiet})
				b.ResetTimer()
				for i := range b.N {
					if i%1000 == 0 {
						// Never drop: pace the producer on the queue.
						for w.Stats().Queued > 50_000 {
							time.Sleep(100 * time.Microsecond)
						}
					}
					r := rows[i%len(rows)]
					if keys == 0 {
						r.SourceIP = crashRow(i).SourceIP
					}
					w.Add(r)
				}
				if err := w.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st := w.Stats()
				if st.Dropped != 0 || st.Written != uint64(b.N) {
					b.Fatalf("stats %+v, want %d written", st, b.N)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(st.MaxFlush.Milliseconds()), "max-flush-ms")
			})
		}
	}
}

// BenchmarkReportBuild measures what building one day's report of a
// domain with 1,000,000 messages over 10,000 keys costs the store:
// creating the report (which freezes its records) and streaming them, with
// the peak RSS of the process while doing so.
func BenchmarkReportBuild(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			d.need(b)
			ctx := context.Background()
			db := d.open(b, store.Options{Logger: quiet})
			start := time.Now()
			fillMillion(b, db)
			b.Logf("1,000,000 rows over 10,000 keys ingested in %v", time.Since(start).Round(time.Millisecond))
			runtime.GC()
			debug.FreeOSMemory()
			before := procStatus("VmRSS")
			resetPeakRSS()
			nr := store.NewReport{Domain: "example.com", Period: storetest.Day,
				Destinations: []store.Destination{{Address: "dmarc@example.com"}}}
			for b.Loop() {
				rep, created, err := db.CreateReport(ctx, nr)
				if err != nil || !created {
					b.Fatalf("CreateReport: created %v, %v", created, err)
				}
				var n, total int64
				if err := db.ReportRecords(ctx, rep.ID, func(r store.Record) error {
					n++
					total += r.Count
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if n != 10_000 || total != 1_000_000 {
					b.Fatalf("%d records totalling %d", n, total)
				}
				b.StopTimer()
				if err := db.DeleteReport(ctx, rep.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(before)/1024, "MiB-RSS-before")
			b.ReportMetric(float64(procStatus("VmHWM"))/1024, "MiB-RSS-peak")
		})
	}
}

// BenchmarkRecords measures streaming the live records of a day (the
// hourly counts added up on the fly) for the same data.
func BenchmarkRecords(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			d.need(b)
			ctx := context.Background()
			db := d.open(b, store.Options{Logger: quiet})
			fillMillion(b, db)
			for b.Loop() {
				var total int64
				if err := db.Records(ctx, "example.com", storetest.Day, func(r store.Record) error {
					total += r.Count
					return nil
				}); err != nil || total != 1_000_000 {
					b.Fatalf("total %d, %v", total, err)
				}
			}
		})
	}
}

// fillMillion ingests 1,000,000 rows of one day over 10,000 keys, each key
// in each of the 24 hours: 240,000 hourly counts.
func fillMillion(b *testing.B, db *store.DB) {
	ctx := context.Background()
	keys := make([]store.Key, 10_000)
	for i := range keys {
		keys[i] = store.KeyOf(storetest.Row("example.com", storetest.T0, fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
	}
	pub := storetest.Policy("example.com")
	var batch store.Batch
	for i := range 1_000_000 {
		batch.AddKey(keys[i%len(keys)], storetest.T0.Add(time.Duration((i/len(keys))%24)*time.Hour), 1, pub)
		if batch.Rows() == 100_000 {
			if err := db.Ingest(ctx, &batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
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
