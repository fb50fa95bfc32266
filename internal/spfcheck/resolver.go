package spfcheck

import (
	"context"
	"net"
	"strings"

	"github.com/dmarcd/dmarcd/internal/dnscache"
)

// resolver is what blitiri.com.ar/go/spf asks its DNS questions of, for one
// check: our cache, with three things added.
//
//   - Every SPF record fetched (the one checked, and those of include and
//     redirect targets) is checked against the grammar first; a record with
//     a syntax error anywhere is refused with a *syntaxError, which the
//     library turns into permerror. The library itself reads records
//     lazily and misses errors after the term that matched.
//   - Address lookups ask only for A records when the client is IPv4: the
//     "a" and "mx" mechanisms, "exists" and the validation of "ptr" names
//     all need A records then (RFC 7208 §5.3, §5.4, §5.5, §5.7), so a
//     broken AAAA record cannot turn their result into temperror and half
//     the queries are saved. For an IPv6 client both are asked for, as
//     "exists" still needs A.
//   - A name longer than 253 octets, which only macro expansion can
//     produce, loses labels on its left until it fits (RFC 7208 §7.3).
//
// Errors of the cache are handed on untouched: they are *net.DNSError, the
// only type the library looks at to tell a missing name (void lookup, or
// "none") from a temporary failure (temperror).
type resolver struct {
	dns  *dnscache.Resolver
	ipv4 bool
}

// LookupTXT implements spf.DNSResolver.
func (r *resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	name = fitName(name)
	txts, err := r.dns.LookupTXT(ctx, name)
	if err != nil {
		return nil, err
	}
	n, record := 0, ""
	for _, t := range txts {
		if isSPFRecord(t) {
			n, record = n+1, t
		}
	}
	if n == 1 { // several records are the library's permerror to give
		if err := checkRecord(strings.TrimSuffix(name, "."), record); err != nil {
			return nil, err
		}
	}
	return txts, nil
}

// LookupIPAddr implements spf.DNSResolver.
func (r *resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	host = fitName(host)
	if !r.ipv4 {
		return r.dns.LookupIPAddr(ctx, host)
	}
	return r.dns.LookupA(ctx, host)
}

// LookupMX implements spf.DNSResolver.
func (r *resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return r.dns.LookupMX(ctx, fitName(name))
}

// LookupAddr implements spf.DNSResolver.
func (r *resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return r.dns.LookupAddr(ctx, addr)
}

// fitName shortens a name longer than 253 octets (without its final dot)
// by removing labels on its left, as RFC 7208 §7.3 asks of expanded
// macros.
func fitName(name string) string {
	for len(strings.TrimSuffix(name, ".")) > 253 {
		i := strings.IndexByte(name, '.')
		if i < 0 {
			break
		}
		name = name[i+1:]
	}
	return name
}
