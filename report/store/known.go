package store

import (
	"encoding/binary"
	"hash/maphash"
)

// hourCache is what knownKeys and knownPolicies are built on: a
// set-associative cache of fixed size, allocated at the first put, whose
// slots each hold a key, a value and the hour they were written for. A
// hash of the key (uniform, being a hash) picks a set, and a new key
// takes an empty slot of it or the one holding the oldest hour. A busy MX
// sees more distinct keys in an hour than is worth keeping, and a Go map
// of the same keys took twice the memory, and kept it after being
// cleared; what the cache forgets is written to the store again, which
// changes nothing there.
type hourCache[K comparable, V any] struct {
	ways  int
	slots []hourSlot[K, V]
}

// hourSlot is one key; hour 0 (hours since the Unix epoch) is empty.
type hourSlot[K comparable, V any] struct {
	key  K
	val  V
	hour uint32
}

// init allocates c, sets sets of ways slots (sets a power of two), at its
// first use.
func (c *hourCache[K, V]) init(sets, ways int) {
	if c.slots == nil {
		c.ways, c.slots = ways, make([]hourSlot[K, V], sets*ways)
	}
}

// set returns the slots where a key of hash where may be.
func (c *hourCache[K, V]) set(where uint64) []hourSlot[K, V] {
	sets := len(c.slots) / c.ways
	i := int(where & uint64(sets-1))
	return c.slots[i*c.ways : (i+1)*c.ways : (i+1)*c.ways]
}

// get returns the slot of key, whose hash is where.
func (c *hourCache[K, V]) get(where uint64, key K) (hourSlot[K, V], bool) {
	if c.slots == nil {
		return hourSlot[K, V]{}, false
	}
	for _, s := range c.set(where) {
		if s.hour != 0 && s.key == key {
			return s, true
		}
	}
	return hourSlot[K, V]{}, false
}

// put stores val for key, whose hash is where, written for hour (not 0).
// c must be allocated (init).
func (c *hourCache[K, V]) put(where uint64, key K, val V, hour uint32) {
	set := c.set(where)
	// Slots fill in order and are never emptied one by one, so a match
	// comes before any empty slot. Among equal hours, bits of the hash
	// the set index does not use pick the victim, so that no slot is the
	// only one ever replaced.
	victim := int(where>>32) % c.ways
	for i, s := range set {
		if s.hour == 0 || s.key == key {
			victim = i
			break
		}
		if s.hour < set[victim].hour {
			victim = i
		}
	}
	set[victim] = hourSlot[K, V]{key, val, hour}
}

// forget empties c, keeping its memory.
func (c *hourCache[K, V]) forget() {
	clear(c.slots)
}

// len returns how many keys c holds.
func (c *hourCache[K, V]) len() int {
	n := 0
	for _, s := range c.slots {
		if s.hour != 0 {
			n++
		}
	}
	return n
}

// The shape of knownKeys: 32,768 sets of 4 keys, 131,072 keys in 2.5 MiB.
const (
	knownSets = 1 << 15
	knownWays = 4
)

// knownKeys remembers, for the keys whose agg_keys row this process
// wrote, the hour it wrote as last_hour, so that Ingest writes a key once
// an hour rather than once a batch.
type knownKeys struct {
	c hourCache[KeyHash, struct{}]
}

// where is the hash of h that picks its set.
func (k *knownKeys) where(h KeyHash) uint64 {
	return binary.LittleEndian.Uint64(h[:8])
}

// get returns the last_hour written for h, as Unix seconds.
func (k *knownKeys) get(h KeyHash) (int64, bool) {
	s, ok := k.c.get(k.where(h), h)
	return int64(s.hour) * 3600, ok
}

// put records that last_hour (Unix seconds, a whole hour) was written
// for h.
func (k *knownKeys) put(h KeyHash, lastHour int64) {
	k.c.init(knownSets, knownWays)
	k.c.put(k.where(h), h, struct{}{}, uint32(lastHour/3600))
}

// forget empties k.
func (k *knownKeys) forget() { k.c.forget() }

// len returns how many keys are known.
func (k *knownKeys) len() int { return k.c.len() }

// The shape of knownPolicies: 8,192 sets of 4 rows, 32,768 in 768 KiB:
// the domains of an hour at a busy MX; beyond, rows are written again.
const (
	policySets = 1 << 13
	policyWays = 4
)

// knownPolicies remembers, for the agg_hours rows (policy domain and
// hour) this process wrote, a hash of the policy it wrote last, so that
// Ingest writes a row when its policy is new or changed rather than once
// a batch: the row holds the policy, and the messages are counted in
// agg_counts. A row it forgot is written again, which changes nothing but
// policy_seen.
type knownPolicies struct {
	seed maphash.Seed
	// c maps a hash of the row's domain and hour to the hash of its
	// policy.
	c hourCache[uint64, uint64]
}

// init allocates k at its first use.
func (k *knownPolicies) init() {
	if k.c.slots == nil {
		k.seed = maphash.MakeSeed()
		k.c.init(policySets, policyWays)
	}
}

// rowHash is the hash of the row of domain and hour.
func (k *knownPolicies) rowHash(domain string, hour int64) uint64 {
	return maphash.String(k.seed, domain) ^ uint64(hour)*0x9e3779b97f4a7c15
}

// forget empties k. It keeps the seed: an Ingest in progress puts the
// hashes it made before.
func (k *knownPolicies) forget() { k.c.forget() }

// policyHash is the hash of a policy as agg_hours stores it (JSON).
func (k *knownPolicies) policyHash(policy string) uint64 {
	k.init()
	return maphash.String(k.seed, policy)
}

// wrote reports whether the policy of hash ph is the last one this
// process wrote in the row of domain and hour (Unix seconds).
func (k *knownPolicies) wrote(domain string, hour int64, ph uint64) bool {
	if k.c.slots == nil {
		return false
	}
	row := k.rowHash(domain, hour)
	s, ok := k.c.get(row, row)
	return ok && s.val == ph
}

// put records that the policy of hash ph (from policyHash) was written in
// the row of domain and hour.
func (k *knownPolicies) put(domain string, hour int64, ph uint64) {
	k.init()
	row := k.rowHash(domain, hour)
	k.c.put(row, row, ph, uint32(hour/3600))
}
