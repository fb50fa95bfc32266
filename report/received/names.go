package received

import (
	"container/list"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Resolver looks up the PTR names of an address: *dnscache.Resolver (the
// one to use: it caches DNS answers), or *net.Resolver.
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Defaults of Names.
const (
	DefaultNameTTL         = time.Hour
	DefaultNameTimeout     = 2 * time.Second
	DefaultNameConcurrency = 8
	DefaultNameCacheSize   = 10000
	// nameFailureTTL is how long a failed lookup (time-out, server
	// failure) is remembered, so that a dashboard refreshing every few
	// seconds does not ask again and again.
	nameFailureTTL = time.Minute
)

// Names resolves source IPs to PTR names, lazily and cached: the first
// name of the PTR records, in lower case without the final dot, or "" when
// there is none or the lookup failed. Names are not forward-confirmed:
// they say who the address's owner claims to be, which is what a reader
// of a summary wants to recognise a sender. Safe for concurrent use; the
// zero value with a Resolver works.
type Names struct {
	Resolver Resolver
	// TTL is how long a name (or the absence of one) is kept; 0 means
	// DefaultNameTTL.
	TTL time.Duration
	// Timeout bounds one lookup; 0 means DefaultNameTimeout.
	Timeout time.Duration
	// Concurrency bounds the lookups in flight; 0 means
	// DefaultNameConcurrency.
	Concurrency int
	// MaxEntries bounds the cache, the least recently used going
	// first; 0 means DefaultNameCacheSize.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once     sync.Once
	sem      chan struct{}
	mu       sync.Mutex
	entries  map[netip.Addr]*list.Element // of *nameEntry
	lru      *list.List
	inflight map[netip.Addr]chan struct{}
	lookups  int64
}

type nameEntry struct {
	addr    netip.Addr
	name    string
	expires time.Time
}

func (n *Names) init() {
	n.once.Do(func() {
		c := n.Concurrency
		if c <= 0 {
			c = DefaultNameConcurrency
		}
		n.sem = make(chan struct{}, c)
		n.entries = map[netip.Addr]*list.Element{}
		n.lru = list.New()
		n.inflight = map[netip.Addr]chan struct{}{}
	})
}

func (n *Names) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// Lookups returns how many lookups were sent to the Resolver.
func (n *Names) Lookups() int64 {
	n.init()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lookups
}

// Lookup returns the names of addrs, from the cache or looked up at once,
// at most Concurrency at a time, each within Timeout. It returns when all
// are known or ctx ends; an address whose lookup is not done then is
// missing from the result (the lookup goes on and fills the cache for
// next time). Invalid addresses are skipped.
func (n *Names) Lookup(ctx context.Context, addrs []netip.Addr) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(addrs))
	if n == nil || n.Resolver == nil {
		return out
	}
	n.init()
	var wait []netip.Addr
	var chans []chan struct{}
	now := n.now()
	n.mu.Lock()
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		if e, ok := n.entries[a]; ok && now.Before(e.Value.(*nameEntry).expires) {
			n.lru.MoveToFront(e)
			out[a] = e.Value.(*nameEntry).name
			continue
		}
		ch, ok := n.inflight[a]
		if !ok {
			ch = make(chan struct{})
			n.inflight[a] = ch
			n.lookups++
			go n.resolve(context.WithoutCancel(ctx), a, ch)
		}
		wait, chans = append(wait, a), append(chans, ch)
	}
	n.mu.Unlock()
	for i, ch := range chans {
		select {
		case <-ch:
		case <-ctx.Done():
			return out
		}
		n.mu.Lock()
		if e, ok := n.entries[wait[i]]; ok {
			out[wait[i]] = e.Value.(*nameEntry).name
		}
		n.mu.Unlock()
	}
	return out
}

// Name returns the name of one address, as Lookup.
func (n *Names) Name(ctx context.Context, a netip.Addr) string {
	return n.Lookup(ctx, []netip.Addr{a})[a]
}

// resolve looks a up, when a slot is free, and caches the outcome.
func (n *Names) resolve(ctx context.Context, a netip.Addr, done chan struct{}) {
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = DefaultNameTimeout
	}
	ttl := n.TTL
	if ttl <= 0 {
		ttl = DefaultNameTTL
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name, failed := "", true
	select {
	case n.sem <- struct{}{}:
		names, err := n.Resolver.LookupAddr(ctx, a.String())
		<-n.sem
		failed = err != nil && !isNotFound(err)
		if err == nil && len(names) > 0 {
			name = strings.ToLower(strings.TrimSuffix(names[0], "."))
		}
	case <-ctx.Done():
	}
	if failed {
		ttl = min(ttl, nameFailureTTL)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.inflight, a)
	defer close(done)
	max := n.MaxEntries
	if max <= 0 {
		max = DefaultNameCacheSize
	}
	e := &nameEntry{addr: a, name: name, expires: n.now().Add(ttl)}
	if old, ok := n.entries[a]; ok {
		old.Value = e
		n.lru.MoveToFront(old)
		return
	}
	n.entries[a] = n.lru.PushFront(e)
	for n.lru.Len() > max {
		last := n.lru.Back()
		n.lru.Remove(last)
		delete(n.entries, last.Value.(*nameEntry).addr)
	}
}

// isNotFound reports whether err says the address has no PTR record, an
// answer worth keeping for the whole TTL.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
