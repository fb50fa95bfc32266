package store

import "encoding/binary"

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
