// Package dnscache is dmarcd's DNS resolver: a stub resolver on
// github.com/miekg/dns that asks the recursive nameservers of
// /etc/resolv.conf (or those configured) and keeps their answers in a
// bounded cache, for DMARC policy discovery, SPF, PTR enrichment and report
// address checks alike.
//
// It is a front cache: the recursive nameserver behind it does the real
// caching, so this one aims at absorbing the repetition of mail traffic
// (the same few domains asked for every message) cheaply, and at keeping
// the three outcomes DMARC needs told apart. Positive answers are kept for
// their TTL, negative ones (NXDOMAIN and NODATA) for the time RFC 2308
// gives them; failures (SERVFAIL, REFUSED, timeouts) are never taken for a
// negative answer. Concurrent lookups of the same name and type share one
// query.
//
// Every error a lookup returns is a *net.DNSError, whose Unwrap gives one
// of dmarc.ErrNXDomain, dmarc.ErrNoRecords or dmarc.ErrTemporary, so that
// errors.Is tells the outcomes apart, and whose IsNotFound and IsTemporary
// are set as the standard library sets them, so that code written for
// *net.Resolver, such as blitiri.com.ar/go/spf (which type-asserts the
// error), reads them right too.
package dnscache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Config tunes a Resolver. The zero value of each field selects its
// default.
type Config struct {
	// Nameservers are the recursive nameservers to ask, in order, as IP
	// addresses with an optional port: "192.0.2.53", "192.0.2.53:5353",
	// "2001:db8::53", "[2001:db8::53]:53". The default is the nameserver
	// lines of /etc/resolv.conf (its options are not read).
	Nameservers []string

	// Timeout bounds each query to one nameserver. The default is 2s.
	Timeout time.Duration

	// Attempts is how many times each nameserver is tried, in turn, before a
	// lookup fails. The default is 2.
	Attempts int

	// MaxEntries caps the number of cached answers; beyond it the least
	// recently used are dropped. The default is 10000, the most
	// dnscache.MaxEntries.
	MaxEntries int

	// MinTTL raises shorter TTLs, positive and negative. The default is 0:
	// TTLs are honoured as published.
	MinTTL time.Duration

	// MaxTTL lowers longer TTLs of positive answers. The default is one
	// hour: the recursive nameserver behind keeps the answer longer if the
	// TTL says so, and a policy change is seen within the hour.
	MaxTTL time.Duration

	// NegativeMaxTTL lowers longer TTLs of negative answers (NXDOMAIN,
	// NODATA). The default is 5 minutes, so that a newly published record
	// is soon seen.
	NegativeMaxTTL time.Duration

	// NegativeTTL is how long a negative answer without an SOA record in
	// its authority section, which gives no TTL to go by (RFC 2308 §5), is
	// kept. The default is 30s.
	NegativeTTL time.Duration

	// ServerFailureTTL, when positive, keeps a failed lookup (SERVFAIL,
	// REFUSED, timeout, network error) that long, at most 5 minutes (RFC
	// 2308 §7), so that a broken domain is not asked again for every
	// message. The cached failure is still returned as dmarc.ErrTemporary.
	// The default is 0: failures are not kept.
	ServerFailureTTL time.Duration

	// UDPSize is the EDNS0 UDP payload size advertised in queries. The
	// default is 1232, the size the DNS Flag Day 2020 settled on to avoid IP
	// fragmentation.
	UDPSize uint16

	// Now returns the current time, for cache expiry. The default is
	// time.Now; tests set a fake clock.
	Now func() time.Time
}

// MaxEntries is the largest Config.MaxEntries: the cache's slots are
// numbered with 32 bits, and 100 million answers take some 20 GiB.
const MaxEntries = 100_000_000

// Defaults of Config.
const (
	defaultTimeout     = 2 * time.Second
	defaultAttempts    = 2
	defaultMaxEntries  = 10000
	defaultMaxTTL      = time.Hour
	defaultNegativeMax = 5 * time.Minute
	defaultNegativeTTL = 30 * time.Second
	defaultUDPSize     = 1232

	// maxFailureTTL is the longest a server failure may be cached (RFC 2308
	// §7.1 and §7.2).
	maxFailureTTL = 5 * time.Minute

	// maxCNAMEs bounds the CNAME chain followed from one name. Real chains
	// have one or two links; longer ones are loops or mistakes.
	maxCNAMEs = 8

	resolvConf = "/etc/resolv.conf"
)

// Resolver is a caching DNS resolver. It implements dmarc.Resolver and is
// safe for concurrent use. Slices it returns are shared with its cache and
// must not be modified.
type Resolver struct {
	cfg      Config
	servers  []string
	udp, tcp *dns.Client
	cache    *cache
	stats    counters
	epoch    time.Time // the origin of the cache's clock (now)

	mu       sync.Mutex
	inflight map[key]*call // lookups being resolved, for coalescing

	failuresMu sync.Mutex
	failures   map[failureKey]*lookupFailure // sharedFailure's
}

var _ dmarc.Resolver = (*Resolver)(nil)

// call is one upstream resolution that concurrent lookups of the same key
// wait for.
type call struct {
	done chan struct{}
	e    *entry // set before done is closed
}

// New returns a Resolver with cfg, its zero fields set to their defaults.
// It fails if the configuration is invalid or, when cfg.Nameservers is
// empty, /etc/resolv.conf cannot be read or lists no nameserver.
func New(cfg Config) (*Resolver, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = defaultAttempts
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = defaultMaxEntries
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = defaultMaxTTL
	}
	if cfg.NegativeMaxTTL == 0 {
		cfg.NegativeMaxTTL = defaultNegativeMax
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = defaultNegativeTTL
	}
	if cfg.UDPSize == 0 {
		cfg.UDPSize = defaultUDPSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.ServerFailureTTL = min(cfg.ServerFailureTTL, maxFailureTTL)
	switch {
	case cfg.Timeout < 0 || cfg.MinTTL < 0 || cfg.MaxTTL < 0 || cfg.NegativeMaxTTL < 0 || cfg.NegativeTTL < 0 || cfg.ServerFailureTTL < 0:
		return nil, errors.New("dnscache: negative duration in configuration")
	case cfg.Attempts < 0 || cfg.MaxEntries < 0:
		return nil, errors.New("dnscache: negative Attempts or MaxEntries")
	case cfg.MaxEntries > MaxEntries:
		return nil, fmt.Errorf("dnscache: MaxEntries %d is above %d", cfg.MaxEntries, MaxEntries)
	case cfg.MinTTL > cfg.MaxTTL:
		return nil, fmt.Errorf("dnscache: MinTTL %v is above MaxTTL %v", cfg.MinTTL, cfg.MaxTTL)
	case cfg.UDPSize < dns.MinMsgSize:
		return nil, fmt.Errorf("dnscache: UDPSize %d is below %d", cfg.UDPSize, dns.MinMsgSize)
	}

	names := cfg.Nameservers
	if len(names) == 0 {
		var err error
		if names, err = systemNameservers(resolvConf); err != nil {
			return nil, fmt.Errorf("dnscache: %w", err)
		}
	}
	servers := make([]string, len(names))
	for i, s := range names {
		var err error
		if servers[i], err = parseNameserver(s); err != nil {
			return nil, fmt.Errorf("dnscache: %w", err)
		}
	}

	r := &Resolver{
		cfg:      cfg,
		servers:  servers,
		udp:      &dns.Client{Net: "udp", Timeout: cfg.Timeout, UDPSize: cfg.UDPSize},
		tcp:      &dns.Client{Net: "tcp", Timeout: cfg.Timeout},
		inflight: make(map[key]*call),
		epoch:    cfg.Now(),
	}
	r.cache = newCache(cfg.MaxEntries, &r.stats.evictions)
	return r, nil
}

// now is the time on the cache's clock: since the resolver was made.
func (r *Resolver) now() time.Duration { return r.cfg.Now().Sub(r.epoch) }

// systemNameservers returns the nameservers listed in the resolv.conf file
// at path.
func systemNameservers(path string) ([]string, error) {
	conf, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	if len(conf.Servers) == 0 {
		return nil, fmt.Errorf("no nameserver in %s", path)
	}
	servers := make([]string, len(conf.Servers))
	for i, s := range conf.Servers {
		servers[i] = net.JoinHostPort(s, conf.Port)
	}
	return servers, nil
}

// parseNameserver returns s, an IP address with an optional port, as
// "host:port". Names are refused: finding a nameserver's address would
// need a nameserver.
func parseNameserver(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil { // no port: "192.0.2.1", "2001:db8::1" or "[2001:db8::1]"
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "53"
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", fmt.Errorf("nameserver %q: not an IP address", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("nameserver %q: bad port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// Answer is the outcome of a lookup.
type Answer struct {
	// Name is the name asked, lowercase, without the final dot.
	Name string
	// Canonical is the name at the end of the CNAME chain from Name, in the
	// same form: the owner of Records, and the name Rcode is about (RFC
	// 6604). It is Name when there was no CNAME.
	Canonical string
	// Rcode is dns.RcodeSuccess, dns.RcodeNameError (NXDOMAIN), or
	// dns.RcodeServerFailure when the lookup failed.
	Rcode int
	// TTL is how much longer the answer stays in the cache.
	TTL time.Duration
}

// Lookup describes the outcome of a lookup of type qtype (dns.TypeTXT,
// ...) at name, following CNAMEs, from the cache or from the nameservers;
// the typed methods (LookupTXT, ...) return the records themselves. name
// may end with a dot; case does not matter.
//
// For NXDOMAIN and NODATA the error wraps dmarc.ErrNXDomain or
// dmarc.ErrNoRecords and the Answer still describes the response; when the
// question could not be answered the error wraps dmarc.ErrTemporary. A
// name that cannot exist (see ErrInvalidName) is not asked for.
//
// ctx bounds how long this caller waits, not the query: that is shared
// with concurrent callers of the same name and type, runs to its end
// (Config.Timeout and Attempts bound it) and fills the cache for them.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) (Answer, error) {
	e, err := r.lookupEntry(ctx, name, qtype)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Name: e.name, Canonical: e.canonical(), Rcode: int(e.rcode), TTL: max(e.expires-r.now(), 0)}
	return a, e.err()
}

// LookupTXT returns the TXT records at name, each with its
// character-strings joined with nothing between them (RFC 7489 §6.6.3, RFC
// 7208 §3.3). It implements dmarc.Resolver.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	e, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	switch v := e.value().(type) {
	case *[1]string:
		return v[:], nil
	case []string:
		return v, nil
	}
	return nil, nil
}

// CachedTXT reports whether LookupTXT(name) would be answered from the
// cache now, without asking a nameserver. The milter asks it before
// starting a policy lookup in the background as the From field arrives:
// with the answer at hand there is nothing to start.
func (r *Resolver) CachedTXT(name string) bool {
	n, err := normalize(name)
	if err != nil {
		return false
	}
	return r.cache.has(key{n, dns.TypeTXT}, r.now())
}

// Exists reports whether name exists: false for NXDOMAIN, true for any
// other answer, NODATA included. It implements dmarc.Resolver.
//
// It asks for A records: NXDOMAIN is about the name, whatever the type
// asked (RFC 2308 §2.1), and A is the one type every server, however old or broken,
// answers correctly, and the most likely to be in the recursive
// nameserver's cache already. A name whose CNAME leads nowhere exists: it
// owns the CNAME. A name that cannot exist (ErrInvalidName) does not.
func (r *Resolver) Exists(ctx context.Context, name string) (bool, error) {
	e, err := r.lookupEntry(ctx, name, dns.TypeA)
	if err != nil {
		if errors.Is(err, dmarc.ErrNXDomain) { // an invalid name
			return false, nil
		}
		return false, err
	}
	f, _ := e.value().(*lookupFailure)
	switch {
	case f == nil, errors.Is(f.unwrap, dmarc.ErrNoRecords):
		return true, nil
	case errors.Is(f.unwrap, dmarc.ErrNXDomain):
		return e.canonical() != e.name, nil
	}
	return false, e.err()
}

// LookupIPAddr returns the IPv4 and IPv6 addresses of host, IPv4 first, in
// the shape of net.Resolver.LookupIPAddr (and of the resolver
// blitiri.com.ar/go/spf asks for). The A and AAAA queries go out together.
// If either fails the lookup fails, rather than give half the addresses:
// SPF must say temperror then (RFC 7208 §5), not fail.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	type result struct {
		addrs []net.IPAddr
		err   error
	}
	aaaa := make(chan result, 1)
	go func() {
		addrs, err := lookupView[[]net.IPAddr](r, ctx, host, dns.TypeAAAA)
		aaaa <- result{addrs, err}
	}()
	v4, err4 := lookupView[[]net.IPAddr](r, ctx, host, dns.TypeA)
	v6 := <-aaaa
	switch {
	case errors.Is(err4, dmarc.ErrTemporary):
		return nil, err4
	case errors.Is(v6.err, dmarc.ErrTemporary):
		return nil, v6.err
	case len(v4) == 0 && len(v6.addrs) == 0:
		return nil, err4 // NXDOMAIN or NODATA, the same for both types
	case len(v6.addrs) == 0:
		return v4, nil
	case len(v4) == 0:
		return v6.addrs, nil
	}
	return slices.Concat(v4, v6.addrs), nil
}

// LookupA returns the IPv4 addresses of host: LookupIPAddr without the
// AAAA query, for SPF on a host without IPv6.
func (r *Resolver) LookupA(ctx context.Context, host string) ([]net.IPAddr, error) {
	return lookupView[[]net.IPAddr](r, ctx, host, dns.TypeA)
}

// LookupMX returns the MX records of name, sorted by preference, hosts
// fully qualified with the final dot as net.Resolver gives them.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return lookupView[[]*net.MX](r, ctx, name, dns.TypeMX)
}

// LookupAddr returns the names an IP address maps to (PTR records),
// fully qualified with the final dot as net.Resolver gives them. An addr
// that is not an IP address gives an error wrapping ErrInvalidName.
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		r.stats.invalidNames.Add(1)
		return nil, newError(addr, dns.TypePTR, "", fmt.Errorf("%w: not an IP address", ErrInvalidName))
	}
	return lookupView[[]string](r, ctx, arpa, dns.TypePTR)
}

// lookupView returns the records of a lookup in the shape the typed methods
// return, built when the answer was cached.
func lookupView[T any](r *Resolver, ctx context.Context, name string, qtype uint16) (T, error) {
	var zero T
	e, err := r.lookup(ctx, name, qtype)
	if err != nil {
		return zero, err
	}
	v, _ := e.value().(T)
	return v, nil
}

// lookup returns the entry for name and qtype, from the cache or from the
// nameservers, and the error that goes with it: the entry's, or that of a
// lookup with no entry to describe the outcome (an invalid name, a caller
// that gave up).
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (entry, error) {
	e, err := r.lookupEntry(ctx, name, qtype)
	if err != nil {
		return entry{}, err
	}
	return e, e.err()
}

// lookupEntry is lookup without making the error of a negative entry:
// the error is that of a lookup with no entry (an invalid name, a caller
// that gave up), and nil with an entry.
func (r *Resolver) lookupEntry(ctx context.Context, name string, qtype uint16) (entry, error) {
	n, err := normalize(name)
	if err != nil {
		r.stats.invalidNames.Add(1)
		return entry{}, newError(name, qtype, "", fmt.Errorf("%w: %v", ErrInvalidName, err))
	}
	k := key{n, qtype}
	if e, ok := r.cache.get(k, r.now()); ok {
		r.stats.hit(&e)
		return e, nil
	}
	return r.resolve(ctx, k)
}

// resolve gets the answer for k from the nameservers, or waits for the
// lookup of another caller already doing so. The query runs apart from the
// callers, so that the one who started it may give up (ctx) without failing
// the others; its answer is cached for whoever asks next.
func (r *Resolver) resolve(ctx context.Context, k key) (entry, error) {
	r.mu.Lock()
	c := r.inflight[k]
	if c != nil {
		r.stats.coalesced.Add(1)
	} else {
		// The lookup that filled the cache may have ended between our
		// miss and now; it caches before it leaves inflight.
		if e, ok := r.cache.get(k, r.now()); ok {
			r.mu.Unlock()
			r.stats.hit(&e)
			return e, nil
		}
		r.stats.misses.Add(1)
		c = &call{done: make(chan struct{})}
		r.inflight[k] = c
		go r.fill(context.WithoutCancel(ctx), k, c)
	}
	r.mu.Unlock()

	select {
	case <-c.done:
		return *c.e, nil
	case <-ctx.Done():
		return entry{}, newError(k.name, k.qtype, "", fmt.Errorf("%w: %w", dmarc.ErrTemporary, ctx.Err()))
	}
}

// fill resolves k for the callers waiting on c and caches the outcome.
// ctx carries no cancellation: the time spent is bounded by the timeout
// and attempts of each query.
func (r *Resolver) fill(ctx context.Context, k key, c *call) {
	e := r.query(ctx, k)
	if e.expires > r.now() {
		r.cache.put(e)
	}
	r.mu.Lock()
	delete(r.inflight, k)
	r.mu.Unlock()
	c.e = e
	close(c.done)
}

// query asks the nameservers for k, chasing CNAMEs that a server left
// unresolved, and returns the outcome as an entry to cache.
func (r *Resolver) query(ctx context.Context, k key) *entry {
	follow := k.qtype != dns.TypeCNAME && k.qtype != dns.TypeANY
	target := presentation(dns.Fqdn(k.name))
	var visited []string                  // owners of the CNAMEs followed
	limit := time.Duration(math.MaxInt64) // the shortest CNAME TTL
	for {
		msg, server, err := r.exchange(ctx, target, k.qtype)
		if err != nil {
			return r.failure(k, server, err)
		}

		// Walk the chain the answer holds: CNAMEs need not come in order.
		owner := target
		for follow {
			cname := findCNAME(msg.Answer, owner)
			if cname == nil {
				break
			}
			visited = append(visited, owner)
			owner = cname.Target
			limit = min(limit, seconds(cname.Hdr.Ttl))
			switch {
			case len(visited) > maxCNAMEs:
				return r.failure(k, server, fmt.Errorf("CNAME chain longer than %d", maxCNAMEs))
			case slices.ContainsFunc(visited, func(v string) bool { return strings.EqualFold(v, owner) }):
				return r.failure(k, server, fmt.Errorf("CNAME loop at %s", owner))
			}
		}

		var records []dns.RR
		for _, rr := range msg.Answer {
			if h := rr.Header(); h.Rrtype == k.qtype && strings.EqualFold(h.Name, owner) {
				records = append(records, rr)
			}
		}
		e := &entry{name: k.name, qtype: k.qtype, rcode: uint16(msg.Rcode)}
		canonical := k.name
		if len(visited) > 0 {
			canonical = strings.ToLower(strings.TrimSuffix(owner, "."))
		}
		switch {
		case len(records) > 0:
			ttl := limit
			for _, rr := range records {
				ttl = min(ttl, seconds(rr.Header().Ttl))
			}
			e.expires = r.now() + min(max(ttl, r.cfg.MinTTL), r.cfg.MaxTTL)
			e.val = view(k.qtype, records)
			return e.alias(canonical)
		case msg.Rcode == dns.RcodeNameError:
			r.stats.nxdomain.Add(1)
			return r.negative(e, msg, limit, r.sharedFailure(k.qtype, server, dmarc.ErrNXDomain)).alias(canonical)
		case owner != target && findSOA(msg.Ns) == nil:
			// The chain left the server's zones: it gave the CNAME and no
			// verdict on the target (no SOA of a NODATA), so ask for the
			// target, as a recursive nameserver would.
			target = owner
			continue
		}
		r.stats.nodata.Add(1)
		return r.negative(e, msg, limit, r.sharedFailure(k.qtype, server, dmarc.ErrNoRecords)).alias(canonical)
	}
}

// negative completes e as a negative answer, kept for the TTL of RFC 2308
// §5: the smaller of the SOA's TTL and its MINIMUM field, or
// Config.NegativeTTL without an SOA; never longer than a CNAME that led
// there (limit), and clamped to [MinTTL, NegativeMaxTTL].
func (r *Resolver) negative(e *entry, msg *dns.Msg, limit time.Duration, f *lookupFailure) *entry {
	ttl := r.cfg.NegativeTTL
	if soa := findSOA(msg.Ns); soa != nil {
		ttl = seconds(min(soa.Hdr.Ttl, soa.Minttl))
	}
	e.expires = r.now() + min(max(min(ttl, limit), r.cfg.MinTTL), r.cfg.NegativeMaxTTL)
	e.val = f
	return e
}

// failure returns the entry of a lookup that could not be answered. It is
// cached only if Config.ServerFailureTTL says so.
func (r *Resolver) failure(k key, server string, cause error) *entry {
	r.stats.temporary.Add(1)
	e := &entry{
		name: k.name, qtype: k.qtype, rcode: dns.RcodeServerFailure,
		val: newFailure(k.qtype, server, fmt.Errorf("%w: %w", dmarc.ErrTemporary, cause)),
	}
	if r.cfg.ServerFailureTTL > 0 {
		e.expires = r.now() + r.cfg.ServerFailureTTL
	}
	return e
}

// exchange asks the nameservers in turn, Config.Attempts rounds, until one
// gives an answer (NOERROR or NXDOMAIN). It returns the answer and the
// server that gave it, or the last error and the server that caused it.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	q := new(dns.Msg).SetQuestion(name, qtype)
	q.SetEdns0(r.cfg.UDPSize, false)
	var lastErr error
	var lastServer string
	for range r.cfg.Attempts {
		for _, server := range r.servers {
			msg, err := r.ask(ctx, q, server)
			if err == nil {
				return msg, server, nil
			}
			lastErr, lastServer = err, server
		}
	}
	return nil, lastServer, lastErr
}

// ask sends q to server over UDP, and again over TCP if the answer was
// truncated. It returns an error for anything but a usable answer.
func (r *Resolver) ask(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	msg, err := r.send(ctx, r.udp, q, server)
	if err == nil && msg.Truncated {
		r.stats.truncated.Add(1)
		msg, err = r.send(ctx, r.tcp, q, server)
	}
	if err != nil {
		return nil, err
	}
	switch msg.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		if len(msg.Question) != 1 || msg.Question[0].Qtype != q.Question[0].Qtype ||
			!strings.EqualFold(msg.Question[0].Name, q.Question[0].Name) {
			r.stats.networkErrors.Add(1)
			return nil, errors.New("answer to another question")
		}
		return msg, nil
	case dns.RcodeServerFailure:
		r.stats.serverFailures.Add(1)
	case dns.RcodeRefused:
		r.stats.refused.Add(1)
	default:
		r.stats.otherRcodes.Add(1)
	}
	return nil, rcodeError(msg.Rcode)
}

// send makes one exchange with server, bounded by Config.Timeout.
func (r *Resolver) send(ctx context.Context, c *dns.Client, q *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	r.stats.queries.Add(1)
	msg, rtt, err := c.ExchangeContext(ctx, q, server)
	if err != nil {
		if isTimeout(err) {
			r.stats.timeouts.Add(1)
		} else {
			r.stats.networkErrors.Add(1)
		}
		return nil, err
	}
	r.stats.answered.Add(1)
	r.stats.latency.Add(int64(rtt))
	return msg, nil
}

// rcodeError is a failure response code from a nameserver.
type rcodeError int

func (e rcodeError) Error() string {
	if s, ok := dns.RcodeToString[int(e)]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(int(e))
}

// newError returns the error of a lookup: a *net.DNSError, with the flags
// the standard library would set, that unwraps to err.
func newError(name string, qtype uint16, server string, err error) *net.DNSError {
	return newFailure(qtype, server, err).error(name)
}

// sharedFailure returns the lookupFailure of qtype from server for err,
// dmarc.ErrNXDomain or ErrNoRecords, made once: the negative entries share
// it.
func (r *Resolver) sharedFailure(qtype uint16, server string, err error) *lookupFailure {
	k := failureKey{server, qtype, err}
	r.failuresMu.Lock()
	defer r.failuresMu.Unlock()
	f := r.failures[k]
	if f == nil {
		if r.failures == nil || len(r.failures) >= maxSharedFailures {
			r.failures = make(map[failureKey]*lookupFailure)
		}
		f = newFailure(qtype, server, err)
		r.failures[k] = f
	}
	return f
}

// failureKey names a shared lookupFailure.
type failureKey struct {
	server string
	qtype  uint16
	err    error
}

// maxSharedFailures bounds Resolver.failures: the nameservers times the
// query types asked times two, far fewer unless the servers change.
const maxSharedFailures = 256

func isTimeout(err error) bool {
	var nerr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &nerr) && nerr.Timeout()
}

// seconds converts a TTL. One with the top bit set counts as 0 (RFC 2181
// §8).
func seconds(ttl uint32) time.Duration {
	if ttl > math.MaxInt32 {
		return 0
	}
	return time.Duration(ttl) * time.Second
}

func findCNAME(rrs []dns.RR, owner string) *dns.CNAME {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, owner) {
			return c
		}
	}
	return nil
}

func findSOA(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

// presentation returns name as miekg/dns prints the names it unpacks from
// the wire, special characters escaped ("a@b" becomes "a\@b"), so that the
// name we ask for compares equal to the names in the answer. SPF macros
// (%{s}, %{l}) put such characters into names.
func presentation(name string) string {
	plain := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	var buf [256]byte
	off, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		return name
	}
	s, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return name
	}
	return s
}
