package config

import "time"

// Received configures what dmarcd does with the DMARC reports other
// receivers send to its users (`dmarcd import`, `dmarcd summary`, the
// dashboard), the [received] table. The reports themselves are kept in
// the [store].
type Received struct {
	// Mailboxes are the addresses where other receivers send the
	// reports about our domains (the rua= and ruf= of our own records).
	// Mail to them is read as it passes the milter and its reports
	// stored; it is delivered as usual.
	Mailboxes []string `toml:"mailboxes"`

	// QueueSize bounds the report mails waiting to be read and stored;
	// beyond it a mail is only delivered (and can be imported later).
	QueueSize int `toml:"queue_size"`

	// ResolveNames looks up the PTR names of the source IPs that
	// summaries show. Never during an import: at query time, cached.
	ResolveNames bool `toml:"resolve_names"`

	// NameTimeout bounds one PTR lookup; a summary never waits longer
	// for a name, it shows the address alone.
	NameTimeout Duration `toml:"name_timeout"`

	// NameConcurrency bounds the PTR lookups in flight.
	NameConcurrency int `toml:"name_concurrency"`

	// NameCacheTTL is how long a PTR name is kept in memory (the DNS
	// cache of [dns] keeps the answers too, for their TTL).
	NameCacheTTL Duration `toml:"name_cache_ttl"`

	// NameCacheSize bounds the names kept in memory.
	NameCacheSize int `toml:"name_cache_size"`
}

// DefaultReceived returns the [received] of Default.
func DefaultReceived() Received {
	return Received{
		QueueSize:       100,
		ResolveNames:    true,
		NameTimeout:     Duration(2 * time.Second),
		NameConcurrency: 8,
		NameCacheTTL:    Duration(time.Hour),
		NameCacheSize:   10000,
	}
}

// Limits that Validate enforces on [received].
const (
	// MaxNameTimeout is the most received.name_timeout may be: a summary
	// waits that long at worst.
	MaxNameTimeout = 30 * time.Second
	// MaxNameConcurrency is the most received.name_concurrency may be.
	MaxNameConcurrency = 100
)

// received checks the [received] table.
func (v *validator) received(r *Received) {
	for i := range r.Mailboxes {
		v.mailbox("received.mailboxes", &r.Mailboxes[i])
	}
	if r.QueueSize < 1 {
		v.fail("received.queue_size", "must be at least 1, not %d", r.QueueSize)
	}
	if v.positive("received.name_timeout", r.NameTimeout) && r.NameTimeout.Duration() > MaxNameTimeout {
		v.fail("received.name_timeout", "%s is too long: at most %v", r.NameTimeout, MaxNameTimeout)
	}
	if r.NameConcurrency < 1 || r.NameConcurrency > MaxNameConcurrency {
		v.fail("received.name_concurrency", "must be 1 to %d, not %d", MaxNameConcurrency, r.NameConcurrency)
	}
	v.positive("received.name_cache_ttl", r.NameCacheTTL)
	if r.NameCacheSize < 1 {
		v.fail("received.name_cache_size", "must be at least 1, not %d", r.NameCacheSize)
	}
}
