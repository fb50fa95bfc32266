package received_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/received"
)

// fakeResolver answers PTR lookups from a map, after delay, counting
// them and the most in flight at once.
type fakeResolver struct {
	names map[string]string // address to name; absent: NXDOMAIN
	fail  map[string]bool   // address whose lookup fails (SERVFAIL)
	delay time.Duration

	calls, inFlight, maxInFlight atomic.Int64
}

func (f *fakeResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	f.calls.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, &net.DNSError{Err: "timeout", Name: addr, IsTimeout: true, IsTemporary: true}
	}
	if f.fail[addr] {
		return nil, &net.DNSError{Err: "server failure", Name: addr, IsTemporary: true}
	}
	if n, ok := f.names[addr]; ok {
		return []string{n, "other.example."}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestNamesAreLookedUpOnceAndKeptForTheirTTL(t *testing.T) {
	res := &fakeResolver{names: map[string]string{"192.0.2.1": "Mail.Example.COM."}}
	clk := &clock{t: time.Unix(1e9, 0)}
	n := &received.Names{Resolver: res, TTL: time.Hour, Now: clk.Now}
	ctx := context.Background()
	for range 3 {
		got := n.Lookup(ctx, []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2"), {}})
		if got[addr("192.0.2.1")] != "mail.example.com" || got[addr("192.0.2.2")] != "" || len(got) != 2 {
			t.Fatalf("Lookup = %v", got)
		}
	}
	if c := res.calls.Load(); c != 2 {
		t.Errorf("%d lookups, want one per address", c)
	}
	clk.Advance(time.Hour + time.Second)
	n.Name(ctx, addr("192.0.2.1"))
	if c := res.calls.Load(); c != 3 {
		t.Errorf("%d lookups after the TTL, want 3", c)
	}
}

func TestFailedLookupsAreKeptBriefly(t *testing.T) {
	res := &fakeResolver{fail: map[string]bool{"192.0.2.9": true}}
	clk := &clock{t: time.Unix(1e9, 0)}
	n := &received.Names{Resolver: res, TTL: time.Hour, Now: clk.Now}
	ctx := context.Background()
	n.Name(ctx, addr("192.0.2.9"))
	n.Name(ctx, addr("192.0.2.9"))
	clk.Advance(2 * time.Minute)
	n.Name(ctx, addr("192.0.2.9"))
	if c := res.calls.Load(); c != 2 {
		t.Errorf("%d lookups, want 2: a failure is kept a minute, not an hour", c)
	}
}

func TestLookupsAreBoundedAndTimedOut(t *testing.T) {
	res := &fakeResolver{names: map[string]string{}, delay: 50 * time.Millisecond}
	var addrs []netip.Addr
	for i := range 20 {
		a := fmt.Sprintf("192.0.2.%d", i)
		res.names[a] = fmt.Sprintf("h%d.example.", i)
		addrs = append(addrs, addr(a))
	}
	n := &received.Names{Resolver: res, Concurrency: 3}
	got := n.Lookup(context.Background(), addrs)
	if len(got) != 20 || got[addr("192.0.2.7")] != "h7.example" {
		t.Errorf("Lookup = %v", got)
	}
	if m := res.maxInFlight.Load(); m > 3 {
		t.Errorf("%d lookups in flight at once, want at most 3", m)
	}

	slow := &fakeResolver{names: map[string]string{"192.0.2.1": "slow.example."}, delay: time.Minute}
	n = &received.Names{Resolver: slow, Timeout: 20 * time.Millisecond}
	start := time.Now()
	if name := n.Name(context.Background(), addr("192.0.2.1")); name != "" {
		t.Errorf("name %q from a lookup that timed out", name)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a timed-out lookup took %v", d)
	}

	// The caller's context ends first: no wait for the lookup.
	n = &received.Names{Resolver: slow, Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	if got := n.Lookup(ctx, []netip.Addr{addr("192.0.2.1")}); len(got) != 0 {
		t.Errorf("Lookup after the deadline = %v", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Lookup waited %v past its context", d)
	}
}

func TestTheCacheIsBounded(t *testing.T) {
	res := &fakeResolver{names: map[string]string{}}
	n := &received.Names{Resolver: res, MaxEntries: 5}
	ctx := context.Background()
	for i := range 10 {
		n.Name(ctx, addr(fmt.Sprintf("192.0.2.%d", i)))
	}
	n.Name(ctx, addr("192.0.2.9")) // recent: cached
	n.Name(ctx, addr("192.0.2.0")) // evicted: asked again
	if c := res.calls.Load(); c != 11 {
		t.Errorf("%d lookups, want 11", c)
	}
}

func TestConcurrentLookupsOfOneAddressShareOneQuery(t *testing.T) {
	res := &fakeResolver{names: map[string]string{"192.0.2.1": "a.example."}, delay: 20 * time.Millisecond}
	n := &received.Names{Resolver: res}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if got := n.Name(context.Background(), addr("192.0.2.1")); got != "a.example" {
				t.Errorf("name %q", got)
			}
		})
	}
	wg.Wait()
	if c := res.calls.Load(); c != 1 {
		t.Errorf("%d lookups, want 1", c)
	}
}

func TestNoResolverNoNames(t *testing.T) {
	var n *received.Names
	if got := n.Lookup(context.Background(), []netip.Addr{addr("192.0.2.1")}); len(got) != 0 {
		t.Errorf("Lookup = %v", got)
	}
}
