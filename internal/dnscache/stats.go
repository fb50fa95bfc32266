package dnscache

import (
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Stats is a snapshot of a Resolver's counters, for metrics. Counters only
// grow; Entries is the present size of the cache.
type Stats struct {
	// Entries is the number of answers in the cache, expired ones not yet
	// dropped included.
	Entries int

	// Each lookup counts in one of these (LookupIPAddr makes two).
	Hits         uint64 // answered from the cache, with records
	NegativeHits uint64 // answered from the cache, NXDOMAIN or NODATA
	FailureHits  uint64 // answered from a cached failure (Config.ServerFailureTTL)
	Misses       uint64 // sent to the nameservers by this call
	Coalesced    uint64 // joined a query another call had sent
	InvalidNames uint64 // refused without a query (ErrInvalidName)

	// Outcomes of the misses.
	NXDomain  uint64 // NXDOMAIN
	NoData    uint64 // NODATA
	Temporary uint64 // no answer: every attempt failed, or a CNAME loop

	// Queries to the nameservers, retries and TCP included.
	Queries        uint64
	Answered       uint64        // answered, whatever the rcode
	Latency        time.Duration // round trips of the answered queries, summed
	Timeouts       uint64        // unanswered in Config.Timeout
	NetworkErrors  uint64        // failed otherwise, or answered another question
	ServerFailures uint64        // answered SERVFAIL
	Refused        uint64        // answered REFUSED
	OtherRcodes    uint64        // answered another error (FORMERR, NOTIMP, ...)
	Truncated      uint64        // answered truncated over UDP, so asked again over TCP

	// Evictions counts answers dropped, unexpired, to stay within
	// Config.MaxEntries.
	Evictions uint64
}

type counter = atomic.Uint64

// counters are the live values behind Stats.
type counters struct {
	hits, negativeHits, failureHits, misses, coalesced, invalidNames counter
	nxdomain, nodata, temporary                                      counter
	queries, answered, timeouts, networkErrors                       counter
	serverFailures, refused, otherRcodes, truncated, evictions       counter
	latency                                                          atomic.Int64
}

// hit counts an answer from the cache.
func (c *counters) hit(e *entry) {
	switch {
	case !e.failed():
		c.hits.Add(1)
	case e.rcode == dns.RcodeServerFailure:
		c.failureHits.Add(1)
	default:
		c.negativeHits.Add(1)
	}
}

// Stats returns the counters as they are now.
func (r *Resolver) Stats() Stats {
	c := &r.stats
	return Stats{
		Entries:        r.cache.len(),
		Hits:           c.hits.Load(),
		NegativeHits:   c.negativeHits.Load(),
		FailureHits:    c.failureHits.Load(),
		Misses:         c.misses.Load(),
		Coalesced:      c.coalesced.Load(),
		InvalidNames:   c.invalidNames.Load(),
		NXDomain:       c.nxdomain.Load(),
		NoData:         c.nodata.Load(),
		Temporary:      c.temporary.Load(),
		Queries:        c.queries.Load(),
		Answered:       c.answered.Load(),
		Latency:        time.Duration(c.latency.Load()),
		Timeouts:       c.timeouts.Load(),
		NetworkErrors:  c.networkErrors.Load(),
		ServerFailures: c.serverFailures.Load(),
		Refused:        c.refused.Load(),
		OtherRcodes:    c.otherRcodes.Load(),
		Truncated:      c.truncated.Load(),
		Evictions:      c.evictions.Load(),
	}
}
