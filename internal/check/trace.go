package check

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnscache"
)

// Resolver is the DNS a check asks. *dnscache.Resolver satisfies it; when
// it also has Stats (as *dnscache.Resolver does), lookups answered over TCP
// after a truncated UDP answer are marked so.
type Resolver interface {
	dmarc.Resolver
	// Lookup gives the full answer for a name, for the CNAME it may be.
	Lookup(ctx context.Context, name string, qtype uint16) (dnscache.Answer, error)
}

type statser interface{ Stats() dnscache.Stats }

// tracer is the dmarc.Resolver the checks run over: it passes every query
// to the real resolver and writes down what it answered, each name and
// type once, in the order first asked.
type tracer struct {
	r     Resolver
	spec  dmarc.Spec
	trail []Lookup
	seen  map[string]bool
	// failed is the name of the last lookup that failed.
	failed string
}

var _ dmarc.Resolver = (*tracer)(nil)

func newTracer(r Resolver, spec dmarc.Spec) *tracer {
	return &tracer{r: r, spec: spec, seen: make(map[string]bool)}
}

// LookupTXT implements dmarc.Resolver.
func (t *tracer) LookupTXT(ctx context.Context, name string) ([]string, error) {
	truncated := t.truncated()
	txts, err := t.r.LookupTXT(ctx, name)
	l := Lookup{Name: canonical(name), Type: "TXT", TXT: append([]string{}, txts...)}
	l.TCP = t.truncated() > truncated
	switch {
	case err == nil:
		l.Result = "records"
	case errors.Is(err, dmarc.ErrNXDomain):
		l.Result = "nxdomain"
	case errors.Is(err, dmarc.ErrNoRecords):
		l.Result = "nodata"
	default:
		l.Result, l.Error = "error", str(describe(err))
		t.failed = l.Name
	}
	if l.Result != "error" && !errors.Is(err, dnscache.ErrInvalidName) {
		// A second ask, answered from the cache, for the CNAME.
		if a, err := t.r.Lookup(ctx, name, dns.TypeTXT); a.Canonical != "" && a.Canonical != a.Name &&
			(err == nil || errors.Is(err, dmarc.ErrNXDomain) || errors.Is(err, dmarc.ErrNoRecords)) {
			l.CNAME = str(a.Canonical)
		}
	}
	for _, txt := range txts {
		if isDMARC(txt, t.spec) {
			l.DMARCRecords++
		}
	}
	t.note(l)
	return txts, err
}

// Exists implements dmarc.Resolver.
func (t *tracer) Exists(ctx context.Context, name string) (bool, error) {
	ok, err := t.r.Exists(ctx, name)
	l := Lookup{Name: canonical(name), Type: "A", TXT: []string{}, Result: "nxdomain"}
	switch {
	case err != nil:
		l.Result, l.Error = "error", str(describe(err))
		t.failed = l.Name
	case ok:
		l.Result = "exists"
	}
	t.note(l)
	return ok, err
}

func (t *tracer) note(l Lookup) {
	k := l.Type + " " + l.Name
	if t.seen[k] {
		return
	}
	t.seen[k] = true
	t.trail = append(t.trail, l)
}

// truncated returns how many truncated UDP answers the resolver has had.
func (t *tracer) truncated() uint64 {
	if s, ok := t.r.(statser); ok {
		return s.Stats().Truncated
	}
	return 0
}

// lookup returns the trail entry for name, or nil.
func (t *tracer) lookup(name string) *Lookup {
	for i := range t.trail {
		if t.trail[i].Type == "TXT" && t.trail[i].Name == name {
			return &t.trail[i]
		}
	}
	return nil
}

// failure describes a failed lookup for a reader: which name, and why.
func (t *tracer) failure(err error) string {
	if t.failed != "" {
		return "lookup of " + t.failed + " failed: " + describe(err)
	}
	return describe(err)
}

// isDMARC reports whether txt claims to be a DMARC record (begins with
// v=DMARC1), whether or not it is a usable one.
func isDMARC(txt string, spec dmarc.Spec) bool {
	_, err := dmarc.Parse(txt, spec)
	return !errors.Is(err, dmarc.ErrNotDMARC)
}

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// describe says in a few words why a lookup failed, without the nameserver
// address or local ports that the underlying errors carry.
func describe(err error) string {
	var op *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, dnscache.ErrInvalidName):
		return "not a valid DNS name; not queried"
	case errors.Is(err, dmarc.ErrNXDomain):
		return "NXDOMAIN"
	case errors.Is(err, dmarc.ErrNoRecords):
		return "NODATA"
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout,
		errors.Is(err, context.DeadlineExceeded):
		return "timeout: no answer from the nameserver"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &op):
		return "network error: " + op.Err.Error()
	case dnsErr != nil && dnsErr.UnwrapErr != nil:
		err = dnsErr.UnwrapErr
	}
	s := err.Error()
	s = strings.TrimPrefix(s, dmarc.ErrTemporary.Error()+": ")
	switch s {
	case "SERVFAIL":
		return "SERVFAIL (the nameserver could not answer)"
	case "REFUSED":
		return "REFUSED (the nameserver refused to answer)"
	}
	return s
}
