package store

// maxKnownKeys is the size of one generation of knownKeys: two hold at
// most 2 × 65,536 keys, about 3 MiB.
const maxKnownKeys = 1 << 16

// knownKeys remembers, for the keys whose agg_keys row this process
// wrote, the hour it wrote as last_hour, so that Ingest writes a key once
// an hour rather than once a batch. It is a cache: a key it forgot is
// written again, which changes nothing in the table.
//
// A busy MX sees more distinct keys in an hour than is worth keeping, so
// the keys live in two generations: when the newer one is full it becomes
// the older one and the older one is dropped whole (a cleared Go map keeps
// its memory; a dropped one does not). A key written in the last
// generation or two stays known.
type knownKeys struct {
	cur, old map[KeyHash]uint32 // hours since the Unix epoch
}

// get returns the last_hour written for h, as Unix seconds.
func (k *knownKeys) get(h KeyHash) (int64, bool) {
	v, ok := k.cur[h]
	if !ok {
		v, ok = k.old[h]
	}
	return int64(v) * 3600, ok
}

// put records that last_hour (Unix seconds, a whole hour) was written
// for h.
func (k *knownKeys) put(h KeyHash, lastHour int64) {
	if len(k.cur) >= maxKnownKeys || k.cur == nil {
		k.old, k.cur = k.cur, make(map[KeyHash]uint32, min(2*len(k.cur), maxKnownKeys))
	}
	k.cur[h] = uint32(lastHour / 3600)
}

// len returns how many keys are known, in both generations.
func (k *knownKeys) len() int { return len(k.cur) + len(k.old) }
