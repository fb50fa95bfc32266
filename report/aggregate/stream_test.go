package aggregate

import (
	"io"
	"net/netip"
	"runtime"
	"testing"

	"github.com/dmarcd/dmarcd/report"
)

// generator yields n records made on the fly, as a store cursor would:
// nothing is kept, so any growth of the heap is the writer's.
func generator(n int) func() (Record, bool, error) {
	dkim := []report.DKIMResult{
		{Domain: "example.com", Selector: "s2026", Result: "pass"},
		{Domain: "esp.example", Selector: "k1", Result: "fail"},
	}
	spf := []report.SPFResult{{Domain: "bounce.example.com", Scope: "mfrom", Result: "pass"}}
	reasons := []report.Override{{Type: "local_policy", Comment: "allow list"}}
	to := []string{"example.net"}
	i := 0
	return func() (Record, bool, error) {
		if i >= n {
			return Record{}, false, nil
		}
		i++
		var a netip.Addr
		if i%4 == 0 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		} else {
			a = netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})
		}
		r := Record{
			SourceIP: a, Count: int64(i%50 + 1), Disposition: "none", DKIMAligned: true,
			HeaderFrom: "example.com", EnvelopeFrom: "bounce.example.com", EnvelopeTo: to,
			DKIM: dkim, SPF: spf,
		}
		if i%10 == 0 {
			r.Reasons = reasons
		}
		return r, true, nil
	}
}

// countWriter counts and discards.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestStreamingMemoryIsFlat writes a report of a million records and checks
// that the live heap does not grow with it: measured after a thousand
// records and again at the end, the difference must stay far below what
// keeping the records (or the output) would cost. Loose on purpose: no
// timing, and a generous bound for the runtime's own noise. Under the race
// detector (make test), which slows the writer some fifteen times, and with
// -short, it streams 100,000 records; plain go test streams the million.
func TestStreamingMemoryIsFlat(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	var ms runtime.MemStats
	heap := func() uint64 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for _, f := range []Format{RFC7489, RFC9990} {
		gen := generator(n)
		var base, end uint64
		i := 0
		next := func() (Record, bool, error) {
			i++
			switch i {
			case 1000:
				base = heap()
			case n:
				end = heap()
			}
			return gen()
		}
		out := &countWriter{}
		if err := Write(out, f, testMeta(), testPolicy(), next); err != nil {
			t.Fatal(err)
		}
		growth := int64(end) - int64(base)
		t.Logf("%s: %d records, %d MB written, heap %d KB at record 1000, %d KB at record %d (growth %d KB)",
			f, n, out.n>>20, base>>10, end>>10, n, growth>>10)
		// A million records are ~500 MB of XML; holding even 8 bytes per
		// record would show as 8 MB.
		if growth > 4<<20 {
			t.Errorf("%s: heap grew by %d KB over %d records", f, growth>>10, n)
		}
	}
}

// BenchmarkWrite writes 10,000-record reports; bytes/record is the size of
// the XML per record.
func BenchmarkWrite(b *testing.B) {
	for _, f := range []Format{RFC7489, RFC9990} {
		b.Run(f.String(), func(b *testing.B) {
			const n = 10_000
			b.ReportAllocs()
			var out countWriter
			for b.Loop() {
				out.n = 0
				if err := Write(&out, f, testMeta(), testPolicy(), generator(n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.n)/n, "bytes/record")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
		})
	}
}

// BenchmarkWriteGzip is the same through gzip: compressed bytes/record is
// what the size limits see.
func BenchmarkWriteGzip(b *testing.B) {
	const n = 10_000
	b.ReportAllocs()
	var size int64
	for b.Loop() {
		var err error
		size, err = WriteGzip(io.Discard, RFC7489, testMeta(), testPolicy(), "r.xml.gz", generator(n))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/n, "gzip-bytes/record")
}
