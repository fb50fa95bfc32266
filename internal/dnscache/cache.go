package dnscache

import (
	"errors"
	"hash/maphash"
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

// entry is one cached outcome of a lookup. It is never changed once made:
// the cache keeps a copy in a slot and hands out copies.
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
// mutex guards both: a hit is a map read, a copy and a few index swaps,
// short enough that a milter's concurrency does not make it contended.
//
// It is laid out for the garbage collector, which traces everything a full
// cache holds at every collection. With 100,000 From domains cached, a map
// of names to entries linked by pointers was three quarters of the live
// heap, and collections took a fifth of the daemon's CPU. So the
// entries live in slots, allocated in chunks and reused through a free
// list, linked by index; and the map goes from a keyed hash of the name and
// type to a slot index, so that it holds no pointer to trace. A slot's
// name is compared on every hit: two keys of one hash (a chance of 2^-64
// per pair, and the seed is random) share a slot, one replacing the other,
// and are never mistaken for each other.
//
// The slots' memory stays at the most entries the cache held (at most
// max, plus the sentinel, in whole chunks): freed slots are reused, not
// given back.
type cache struct {
	mu    sync.Mutex
	max   int
	n     int
	index map[uint64]int32 // hash of a key → its slot
	// hash is a keyed hash of a key; a field so that a test can make
	// keys collide.
	hash   func(name string, qtype uint16) uint64
	chunks []*[chunkSize]slot
	used   int32 // slots handed out so far, slot 0 (the LRU sentinel) included
	free   int32 // first slot of the free list, linked by next; 0 when empty

	evictions *counter
}

// slot holds an entry in the cache, and its place in the LRU list. Slot 0
// is the list's sentinel: its next is the most recently used entry.
type slot struct {
	entry
	prev, next int32
}

// chunkSize is the number of slots allocated at once: 56 KiB.
const chunkSize = 1024

func newCache(max int, evictions *counter) *cache {
	seed := maphash.MakeSeed()
	c := &cache{max: max, index: map[uint64]int32{}, evictions: evictions}
	c.hash = func(name string, qtype uint16) uint64 {
		return maphash.String(seed, name) ^ uint64(qtype)*0x9e3779b97f4a7c15
	}
	c.alloc() // the sentinel, linked to itself
	return c
}

// slot returns slot i.
func (c *cache) slot(i int32) *slot {
	return &c.chunks[uint32(i)/chunkSize][uint32(i)%chunkSize]
}

// find returns the slot of k, 0 if there is none.
func (c *cache) find(k key) (int32, uint64) {
	h := c.hash(k.name, k.qtype)
	i := c.index[h]
	if i == 0 {
		return 0, h
	}
	if s := c.slot(i); s.qtype != k.qtype || s.name != k.name {
		return 0, h // another key of the same hash
	}
	return i, h
}

// get returns the entry for k if it has not expired at now, and marks it
// recently used. An expired entry is removed.
func (c *cache) get(k key, now time.Duration) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, h := c.find(k)
	if i == 0 {
		return entry{}, false
	}
	s := c.slot(i)
	if now >= s.expires {
		c.remove(i, h)
		return entry{}, false
	}
	if c.slot(0).next != i {
		c.unlink(i)
		c.pushFront(i)
	}
	return s.entry, true
}

// has reports whether an entry for k is there and not expired at now,
// leaving the LRU order as it is.
func (c *cache) has(k key, now time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, _ := c.find(k)
	return i != 0 && now < c.slot(i).expires
}

// put stores e, replacing any entry for the same key (or of the same
// hash), and evicts the least recently used entries beyond the cap.
func (c *cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hash(e.name, e.qtype)
	if old := c.index[h]; old != 0 {
		c.remove(old, h)
	}
	i := c.alloc()
	c.slot(i).entry = *e
	c.index[h] = i
	c.n++
	c.pushFront(i)
	for c.n > c.max {
		last := c.slot(0).prev
		s := c.slot(last)
		c.remove(last, c.hash(s.name, s.qtype))
		c.evictions.Add(1)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// alloc returns an unused slot, unlinked.
func (c *cache) alloc() int32 {
	if i := c.free; i != 0 {
		c.free = c.slot(i).next
		return i
	}
	if int(c.used) == len(c.chunks)*chunkSize {
		c.chunks = append(c.chunks, new([chunkSize]slot))
	}
	c.used++
	return c.used - 1
}

// remove drops slot i, whose key has hash h, and puts it on the free list,
// emptied so that it holds nothing for the collector to keep.
func (c *cache) remove(i int32, h uint64) {
	c.unlink(i)
	delete(c.index, h)
	*c.slot(i) = slot{next: c.free}
	c.free = i
	c.n--
}

func (c *cache) unlink(i int32) {
	s := c.slot(i)
	c.slot(s.prev).next, c.slot(s.next).prev = s.next, s.prev
	s.prev, s.next = 0, 0
}

func (c *cache) pushFront(i int32) {
	s, head := c.slot(i), c.slot(0)
	s.prev, s.next = 0, head.next
	c.slot(head.next).prev = i
	head.next = i
}
