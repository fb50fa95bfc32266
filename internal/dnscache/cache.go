package dnscache

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
)

// key names one cache entry: a normalized name and a query type.
type key struct {
	name  string
	qtype uint16
}

// entry is one cached outcome of a lookup. Everything but the list links is
// set before the entry is published and never changed, so a reader can use
// it without a lock.
//
// A cache of a busy MX holds one entry per From domain seen in the last
// hour, so the entry is kept small: it holds the records only in the shape
// a typed method returns, not as miekg/dns parsed them (that doubled its
// size), and its fields are ordered to leave no padding.
type entry struct {
	name string // the key's normalized name
	// expires is when the entry stops being used, as time since the
	// resolver's epoch (so that it follows the monotonic clock).
	expires time.Duration
	// val is, for an answer with records, the records in the shape a typed
	// method returns ([]string for TXT, []net.IPAddr for A and AAAA, ...;
	// *[1]string for the usual TXT answer of one record, which spares the
	// slice header), built once when the entry is made so that a cache hit
	// costs no allocation; for NXDOMAIN, NODATA and failures, a
	// *lookupFailure, from which err makes the *net.DNSError a lookup
	// returns, wrapping dmarc.ErrNXDomain, ErrNoRecords or ErrTemporary.
	// An answer found through a CNAME wraps either in an *aliased. One
	// field for all saves 32 bytes an entry.
	val any

	prev, next *entry // LRU list, guarded by cache.mu

	qtype uint16 // the key's query type
	rcode uint16 // dns.RcodeSuccess, RcodeNameError or RcodeServerFailure
}

// aliased is the val of an entry whose name is an alias (RFC 1034 §3.6.2):
// the name the CNAME chain ended at, the owner of the records or the name
// the negative answer is about (RFC 6604), and the val proper.
type aliased struct {
	canonical string
	val       any
}

// alias records that the answer of e was found at canonical, when that is
// not e's own name.
func (e *entry) alias(canonical string) *entry {
	if canonical != e.name {
		e.val = &aliased{canonical, e.val}
	}
	return e
}

// value is e.val without its alias.
func (e *entry) value() any {
	if a, ok := e.val.(*aliased); ok {
		return a.val
	}
	return e.val
}

// canonical is the end of the CNAME chain from e's name: the name itself
// when there was none.
func (e *entry) canonical() string {
	if a, ok := e.val.(*aliased); ok {
		return a.canonical
	}
	return e.name
}

// err is the error a lookup returns with e: nil for an answer with records.
func (e *entry) err() error {
	if f, ok := e.value().(*lookupFailure); ok {
		return f.error(e.name)
	}
	return nil
}

// failed reports whether e is a negative answer or a failure.
func (e *entry) failed() bool {
	_, ok := e.value().(*lookupFailure)
	return ok
}

// lookupFailure is the error of a lookup but for the name looked up. The
// NXDOMAIN and NODATA entries of one query type from one server share one
// (Resolver.sharedFailure), so that a negative entry, a fifth of a busy
// cache, costs no allocation beyond itself; a lookup that finds one makes
// its *net.DNSError then.
type lookupFailure struct {
	server                       string
	unwrap                       error
	msg                          string // net.DNSError.Err
	notFound, temporary, timeout bool
}

// newFailure describes the error of a lookup of qtype from server
// ("" when no server answered) that unwraps to err.
func newFailure(qtype uint16, server string, err error) *lookupFailure {
	return &lookupFailure{
		server:    server,
		unwrap:    err,
		msg:       dns.Type(qtype).String() + ": " + err.Error(),
		notFound:  errors.Is(err, dmarc.ErrNXDomain) || errors.Is(err, dmarc.ErrNoRecords),
		temporary: errors.Is(err, dmarc.ErrTemporary),
		timeout:   isTimeout(err),
	}
}

// error returns the error of a lookup of name: a *net.DNSError, with the
// flags the standard library would set.
func (f *lookupFailure) error(name string) *net.DNSError {
	return &net.DNSError{
		UnwrapErr:   f.unwrap,
		Err:         f.msg,
		Name:        name,
		Server:      f.server,
		IsNotFound:  f.notFound,
		IsTemporary: f.temporary,
		IsTimeout:   f.timeout,
	}
}

// cache is a map of entries bounded by a least-recently-used list. One
// mutex guards both: a hit is a map read and two pointer swaps, short
// enough that a milter's concurrency does not make it contended.
//
// The entries are kept in one map per query type, keyed by name: a slot
// of 24 bytes where a map keyed by name and type has 32. With 100,000
// From domains cached the maps are a third of the cache's memory.
type cache struct {
	mu     sync.Mutex
	max    int
	n      int
	tables []table // one per query type met: a handful
	lru    entry   // sentinel: lru.next is the most recently used

	evictions *counter
}

// table holds the entries of one query type.
type table struct {
	qtype   uint16
	entries map[string]*entry
}

func newCache(max int, evictions *counter) *cache {
	c := &cache{max: max, evictions: evictions}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// table returns the entries of qtype, nil if there are none and not
// create.
func (c *cache) table(qtype uint16, create bool) map[string]*entry {
	for _, t := range c.tables {
		if t.qtype == qtype {
			return t.entries
		}
	}
	if !create {
		return nil
	}
	t := table{qtype, map[string]*entry{}}
	c.tables = append(c.tables, t)
	return t.entries
}

// get returns the entry for k if it has not expired at now, and marks it
// recently used. An expired entry is removed.
func (c *cache) get(k key, now time.Duration) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.table(k.qtype, false)[k.name]
	if e == nil {
		return nil
	}
	if now >= e.expires {
		c.remove(e)
		return nil
	}
	c.unlink(e)
	c.pushFront(e)
	return e
}

// has reports whether an entry for k is there and not expired at now,
// leaving the LRU order as it is.
func (c *cache) has(k key, now time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.table(k.qtype, false)[k.name]
	return e != nil && now < e.expires
}

// put stores e, replacing any entry for the same key, and evicts the least
// recently used entries beyond the cap.
func (c *cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.table(e.qtype, true)
	if old := t[e.name]; old != nil {
		c.remove(old)
	}
	t[e.name] = e
	c.n++
	c.pushFront(e)
	for c.n > c.max {
		c.remove(c.lru.prev)
		c.evictions.Add(1)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *cache) remove(e *entry) {
	c.unlink(e)
	delete(c.table(e.qtype, false), e.name)
	c.n--
}

func (c *cache) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *cache) pushFront(e *entry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}
