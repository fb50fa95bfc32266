package store

import (
	"encoding/binary"
	"hash/maphash"
)

// The shape of knownKeys: 32,768 sets of 4 keys, 131,072 keys in 2.5 MiB.
const (
	knownSets = 1 << 15
	knownWays = 4
)

// knownKeys remembers, for the keys whose agg_keys row this process
// wrote, the hour it wrote as last_hour, so that Ingest writes a key once
// an hour rather than once a batch. It is a cache: a key it forgot is
// written again, which changes nothing in the table.
//
// A busy MX sees more distinct keys in an hour than is worth keeping, so
// it is a set-associative cache of fixed size, allocated at the first
// write: a key hash (uniform, being a hash) picks a set of four slots,
// and a new key takes an empty slot or the one holding the oldest hour. A
// Go map of the same keys took twice the memory, and kept it after being
// cleared.
type knownKeys struct {
	slots []knownSlot
}

// knownSlot is one key; hour 0 (hours since the Unix epoch) is empty.
type knownSlot struct {
	h    KeyHash
	hour uint32
}

// set returns the slots where h may be.
func (k *knownKeys) set(h KeyHash) []knownSlot {
	i := int(binary.LittleEndian.Uint64(h[:8]) & (knownSets - 1))
	return k.slots[i*knownWays : (i+1)*knownWays : (i+1)*knownWays]
}

// get returns the last_hour written for h, as Unix seconds.
func (k *knownKeys) get(h KeyHash) (int64, bool) {
	if k.slots == nil {
		return 0, false
	}
	for _, s := range k.set(h) {
		if s.hour != 0 && s.h == h {
			return int64(s.hour) * 3600, true
		}
	}
	return 0, false
}

// put records that last_hour (Unix seconds, a whole hour) was written
// for h.
func (k *knownKeys) put(h KeyHash, lastHour int64) {
	if k.slots == nil {
		k.slots = make([]knownSlot, knownSets*knownWays)
	}
	set := k.set(h)
	// Slots fill in order and are never emptied one by one, so a match
	// comes before any empty slot. Among equal hours, a bit of the hash
	// picks the victim, so that no slot is the only one ever replaced.
	victim := int(h[15]) % knownWays
	for i, s := range set {
		if s.hour == 0 || s.h == h {
			victim = i
			break
		}
		if s.hour < set[victim].hour {
			victim = i
		}
	}
	set[victim] = knownSlot{h, uint32(lastHour / 3600)}
}

// len returns how many keys are known.
func (k *knownKeys) len() int {
	n := 0
	for _, s := range k.slots {
		if s.hour != 0 {
			n++
		}
	}
	return n
}

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
// agg_counts. Like knownKeys it is a cache of fixed size: a row it forgot
// is written again, which changes nothing but policy_seen.
type knownPolicies struct {
	seed  maphash.Seed
	slots []policySlot
}

// policySlot is one row: the hash of its domain and hour (0 is empty),
// the hash of its policy, and its hour, for choosing what to forget.
type policySlot struct {
	row, policy uint64
	hour        uint32
}

// rowHash is where the row of domain and hour is.
func (k *knownPolicies) rowHash(domain string, hour int64) uint64 {
	return (maphash.String(k.seed, domain) ^ uint64(hour)*0x9e3779b97f4a7c15) | 1
}

// set returns the slots where row may be.
func (k *knownPolicies) set(row uint64) []policySlot {
	i := int(row>>1) & (policySets - 1)
	return k.slots[i*policyWays : (i+1)*policyWays : (i+1)*policyWays]
}

// init allocates k at its first use.
func (k *knownPolicies) init() {
	if k.slots == nil {
		k.seed = maphash.MakeSeed()
		k.slots = make([]policySlot, policySets*policyWays)
	}
}

// forget empties k. It keeps the seed: an Ingest in progress puts the
// hashes it made before.
func (k *knownPolicies) forget() {
	clear(k.slots)
}

// policyHash is the hash of a policy as agg_hours stores it (JSON).
func (k *knownPolicies) policyHash(policy string) uint64 {
	k.init()
	return maphash.String(k.seed, policy)
}

// wrote reports whether the policy of hash ph is the last one this
// process wrote in the row of domain and hour (Unix seconds).
func (k *knownPolicies) wrote(domain string, hour int64, ph uint64) bool {
	if k.slots == nil {
		return false
	}
	row := k.rowHash(domain, hour)
	for _, s := range k.set(row) {
		if s.row == row {
			return s.policy == ph
		}
	}
	return false
}

// put records that the policy of hash ph (from policyHash) was written in
// the row of domain and hour.
func (k *knownPolicies) put(domain string, hour int64, ph uint64) {
	k.init()
	row := k.rowHash(domain, hour)
	set := k.set(row)
	// As in knownKeys: a match or an empty slot, else the oldest hour,
	// among equals one picked by a bit of the hash.
	victim := int(row>>20) % policyWays
	for i, s := range set {
		if s.row == 0 || s.row == row {
			victim = i
			break
		}
		if s.hour < set[victim].hour {
			victim = i
		}
	}
	set[victim] = policySlot{row, ph, uint32(hour / 3600)}
}
