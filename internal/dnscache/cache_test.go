package dnscache

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// txtEntry is a TXT entry for name, expiring at expires.
func txtEntry(name string, expires time.Duration) *entry {
	return &entry{name: name, qtype: dns.TypeTXT, expires: expires, val: &[1]string{"v=DMARC1; p=none"}}
}

func TestCacheReusesTheSlotsOfDroppedEntries(t *testing.T) {
	c := newCache(3000, new(counter))
	for i := range 10_000 {
		c.put(txtEntry(fmt.Sprintf("d%d.example", i), time.Hour))
	}
	if c.len() != 3000 || c.evictions.Load() != 7000 {
		t.Fatalf("len %d, evictions %d; want 3000, 7000", c.len(), c.evictions.Load())
	}
	// 3,000 entries and the sentinel fit in three chunks of 1,024.
	if len(c.chunks) != 3 {
		t.Errorf("%d chunks of slots, want 3", len(c.chunks))
	}
	for i := range 10_000 {
		_, ok := c.get(key{fmt.Sprintf("d%d.example", i), dns.TypeTXT}, 0)
		if want := i >= 7000; ok != want {
			t.Fatalf("d%d.example cached: %v, want %v", i, ok, want)
		}
	}
}

func TestCacheEmptiesTheSlotsItFrees(t *testing.T) {
	// A free slot must not keep the records of the entry it held alive.
	c := newCache(1, new(counter))
	c.put(txtEntry("a.example", time.Hour))
	i := c.slot(0).next
	c.put(txtEntry("b.example", time.Hour)) // evicts a
	if c.slot(0).next == i {
		t.Fatal("the new entry took the evicted one's slot before it was freed")
	}
	if s := c.slot(i); s.val != nil || s.name != "" {
		t.Errorf("the evicted entry's slot still holds %q, %v", s.name, s.val)
	}
	c.put(txtEntry("c.example", 0)) // evicts b
	if _, ok := c.get(key{"c.example", dns.TypeTXT}, time.Second); ok {
		t.Error("an expired entry was returned")
	}
	if c.len() != 0 || c.free == 0 {
		t.Errorf("after the expired entry was dropped: len %d, free list %d", c.len(), c.free)
	}
}

func TestCacheTellsKeysOfOneHashApart(t *testing.T) {
	c := newCache(10, new(counter))
	c.hash = func(string, uint16) uint64 { return 1 } // every key collides
	a, b := key{"a.example", dns.TypeTXT}, key{"b.example", dns.TypeTXT}
	aMX := key{"a.example", dns.TypeMX}
	c.put(txtEntry(a.name, time.Hour))
	if _, ok := c.get(b, 0); ok || c.has(b, 0) {
		t.Error("b was answered with a's entry")
	}
	if _, ok := c.get(aMX, 0); ok {
		t.Error("a's MX was answered with its TXT entry")
	}
	if e, ok := c.get(a, 0); !ok || e.name != a.name {
		t.Errorf("get(a) = %q, %v; want a's entry", e.name, ok)
	}
	// b takes the place: one entry of the two is kept, never a mix.
	c.put(txtEntry(b.name, time.Hour))
	if _, ok := c.get(a, 0); ok {
		t.Error("a is still answered after b replaced it")
	}
	if e, ok := c.get(b, 0); !ok || e.name != b.name || c.len() != 1 {
		t.Errorf("get(b) = %q, %v with %d entries; want b's entry alone", e.name, ok, c.len())
	}
}

// fullCache returns a cache holding n TXT entries shaped like a busy MX's:
// one DMARC record of 80 bytes per From domain.
func fullCache(n int) *cache {
	c := newCache(n, new(counter))
	for i := range n {
		name := fmt.Sprintf("_dmarc.d%06d.test", i)
		txt := "v=DMARC1; p=reject; rua=mailto:dmarc@" + name[7:] + strings.Repeat("x", 80-45)
		c.put(&entry{name: name, qtype: dns.TypeTXT, expires: time.Hour, val: &[1]string{txt}})
	}
	return c
}

// BenchmarkCacheGC measures what a full cache of 100,000 From domains
// costs the garbage collector: the time of a collection (the live heap is
// mostly the cache), and the cache's bytes per entry.
func BenchmarkCacheGC(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := fullCache(100_000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(c)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100_000, "B/entry")
}
