package dmarc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/net/publicsuffix"
)

// maxWalkQueries is RFC 9989 §4.10's bound on one DNS tree walk: a name of
// eight or more labels is shortened to seven after the first query, so no
// walk makes more than eight.
const maxWalkQueries = 8

// PublicSuffixList finds the public suffix of a domain for RFC 7489's
// organizational domains. golang.org/x/net/publicsuffix.List satisfies it.
type PublicSuffixList interface {
	// PublicSuffix returns the public suffix of a lowercase A-label domain.
	PublicSuffix(domain string) string
}

// Evaluator applies DMARC to messages. Its zero value is not usable: set
// Resolver. An Evaluator is safe for concurrent use; do not change its
// fields after the first call.
type Evaluator struct {
	// Resolver answers the TXT and existence queries.
	Resolver Resolver
	// Spec selects RFC 9989 (the default) or RFC 7489.
	Spec Spec
	// PublicSuffixList is used under RFC 7489; nil means the list compiled
	// into golang.org/x/net/publicsuffix.
	PublicSuffixList PublicSuffixList

	records recordCache
}

// Lookup is one step of a policy discovery, for diagnostics.
type Lookup struct {
	Name    string   // the name queried, "_dmarc.example.com"
	TXT     []string // the TXT records returned
	Found   bool     // exactly one DMARC record was there
	Several bool     // several DMARC records were there and all were discarded
	Err     error    // the lookup failed (NXDOMAIN and NODATA are not errors)
}

// Discovery is where the policy for a domain came from.
type Discovery struct {
	// Domain is the domain asked about, normalized.
	Domain string
	// Record is the policy record that applies, nil when none does. When
	// RecordErr is set it is the partial record, for diagnostics.
	Record *Record
	// RecordErr wraps ErrUnusable when the applicable record cannot be used.
	RecordErr error
	// PolicyDomain is where Record was found.
	PolicyDomain string
	// OrgDomain is Domain's organizational domain under the Evaluator's spec.
	OrgDomain string
	// Inherited is true when Record came from the organizational domain or
	// a public suffix domain rather than Domain itself: sp or np apply.
	Inherited bool
	// PSD is true when Record is a public suffix domain's (psd=y, RFC 9989).
	PSD bool
	// Several is true when a name held several DMARC records, all
	// discarded (RFC 7489 stops there; RFC 9989 walks on).
	Several bool
	// Lookups lists the queries made, in order.
	Lookups []Lookup
}

// Discover finds the DMARC policy record for domain and its organizational
// domain, recording every query. An error wrapping ErrTemporary means the
// answer is unknown; no record found is not an error.
func (e *Evaluator) Discover(ctx context.Context, domain string) (Discovery, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return Discovery{Domain: domain}, err
	}
	ev := e.newEval(ctx)
	ev.trace = true
	disc, err := ev.discover(d)
	if err != nil {
		return disc, err
	}
	org, err := ev.orgDomain(d)
	disc.Lookups = ev.log // the walk for the organizational domain adds queries
	if err != nil {
		return disc, err
	}
	disc.OrgDomain = org
	return disc, nil
}

// OrganizationalDomain returns the organizational domain of domain under
// the Evaluator's spec: the RFC 9989 DNS tree walk or the RFC 7489 public
// suffix list.
func (e *Evaluator) OrganizationalDomain(ctx context.Context, domain string) (string, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return "", err
	}
	return e.newEval(ctx).orgDomain(d)
}

// fetched is the outcome of reading _dmarc at one name.
type fetched struct {
	domain  string
	rec     *Record // nil when no single DMARC record is there
	recErr  error   // ErrUnusable from Parse, with rec partial
	several bool
	err     error // temporary failure
}

// eval is the state of one evaluation: a memo of the names already read,
// so that discovery and the alignment walks never read one name twice, and
// an optional trace for Discover.
type eval struct {
	e     *Evaluator
	ctx   context.Context
	memo  [2 * maxWalkQueries]fetched
	n     int
	more  []fetched // names beyond memo, for messages with many signatures
	trace bool
	log   []Lookup
}

func (e *Evaluator) newEval(ctx context.Context) *eval {
	return &eval{e: e, ctx: ctx}
}

// at returns the memo entry with index i.
func (ev *eval) at(i int) *fetched {
	if i < len(ev.memo) {
		return &ev.memo[i]
	}
	return &ev.more[i-len(ev.memo)]
}

// fetch reads the DMARC record at _dmarc.domain (RFC 9989 §4.10 steps 1–2,
// RFC 7489 §6.6.3 steps 1–2): non-DMARC TXT records are discarded, and
// several DMARC records count as none. It returns an index into ev.memo.
func (ev *eval) fetch(domain string) int {
	for i := 0; i < ev.n; i++ {
		if ev.at(i).domain == domain {
			return i
		}
	}
	if ev.n < len(ev.memo) {
		ev.memo[ev.n] = ev.read(domain)
	} else {
		ev.more = append(ev.more, ev.read(domain))
	}
	ev.n++
	return ev.n - 1
}

func (ev *eval) read(domain string) fetched {
	f := fetched{domain: domain}
	name := "_dmarc." + domain
	txts, err := ev.e.Resolver.LookupTXT(ev.ctx, name)
	if err != nil && !errors.Is(err, ErrNXDomain) && !errors.Is(err, ErrNoRecords) {
		f.err = fmt.Errorf("lookup %s: %w", name, err)
		if !errors.Is(err, ErrTemporary) {
			f.err = fmt.Errorf("lookup %s: %w: %v", name, ErrTemporary, err)
		}
	}
	if f.err == nil {
		ev.parseAll(&f, txts)
	}
	if ev.trace {
		l := Lookup{Name: name, TXT: txts, Found: f.rec != nil, Several: f.several, Err: f.err}
		if err != nil && f.err == nil {
			l.Err = err // NXDOMAIN or NODATA, shown but not fatal
		}
		ev.log = append(ev.log, l)
	}
	return f
}

// parseAll keeps the one DMARC record among txts, if there is exactly one.
func (ev *eval) parseAll(f *fetched, txts []string) {
	count := 0
	for _, t := range txts {
		rec, err := ev.e.records.parse(t, ev.e.Spec)
		if errors.Is(err, ErrNotDMARC) {
			continue
		}
		count++
		f.rec, f.recErr = rec, err
	}
	if count > 1 {
		f.rec, f.recErr, f.several = nil, nil, true
	}
}

// discover finds the applicable policy record for the normalized domain d.
func (ev *eval) discover(d string) (Discovery, error) {
	disc := Discovery{Domain: d}
	first := *ev.at(ev.fetch(d))
	if first.err != nil {
		disc.Lookups = ev.log
		return disc, first.err
	}
	if first.rec != nil {
		disc.Record, disc.RecordErr, disc.PolicyDomain = first.rec, first.recErr, d
		disc.Lookups = ev.log
		return disc, nil
	}
	disc.Several = first.several
	var err error
	if ev.e.Spec == RFC7489 {
		err = ev.discover7489(d, first, &disc)
	} else {
		err = ev.discover9989(d, &disc)
	}
	disc.Lookups = ev.log
	return disc, err
}

// discover7489 follows RFC 7489 §6.6.3: with no record at the author
// domain, read the organizational domain's; several records at either name
// end discovery with no policy.
func (ev *eval) discover7489(d string, first fetched, disc *Discovery) error {
	if first.several {
		return nil
	}
	org := ev.e.orgDomain7489(d)
	if org == d {
		return nil
	}
	f := *ev.at(ev.fetch(org))
	if f.err != nil {
		return f.err
	}
	disc.Several = disc.Several || f.several
	if f.rec != nil {
		disc.Record, disc.RecordErr, disc.PolicyDomain, disc.Inherited = f.rec, f.recErr, org, true
	}
	return nil
}

// discover9989 follows RFC 9989 §4.10.1: walk from the author domain's
// parent; the record that applies is the organizational domain's, or the
// public suffix domain's when the organizational domain has none.
func (ev *eval) discover9989(d string, disc *Discovery) error {
	start := walkStart(d)
	if start == "" {
		return nil
	}
	w, err := ev.walk(start)
	if err != nil {
		return err
	}
	for _, i := range w.found[:w.n] {
		disc.Several = disc.Several || ev.at(i).several
	}
	if w.records == 0 {
		return nil
	}
	org, psd := ev.orgFromWalk(&w, d, false)
	for _, i := range w.found[:w.n] {
		if f := ev.at(i); f.rec != nil && f.domain == org {
			disc.Record, disc.RecordErr, disc.PolicyDomain = f.rec, f.recErr, org
			disc.Inherited = true
			return nil
		}
	}
	if psd != nil {
		disc.Record, disc.RecordErr, disc.PolicyDomain = psd.rec, psd.recErr, psd.domain
		disc.Inherited, disc.PSD = true, true
	}
	return nil
}

// walkStart returns where the policy walk starts after the author domain
// itself: its parent, or its seven rightmost labels when it has more than
// eight (RFC 9989 §4.10.1).
func walkStart(d string) string {
	if labelCount(d) > maxWalkQueries {
		return lastLabels(d, maxWalkQueries-1)
	}
	return parent(d)
}

// walked is the outcome of one DNS tree walk: the names read, as indexes
// into the evaluation's memo, nearest first.
type walked struct {
	found   [maxWalkQueries]int
	n       int
	records int // how many names held a single DMARC record
}

// walk performs the DNS tree walk of RFC 9989 §4.10 from start (queried
// first) towards the root, stopping after a record with psd=y or psd=n.
func (ev *eval) walk(start string) (walked, error) {
	var w walked
	target := start
	for target != "" && w.n < maxWalkQueries {
		i := ev.fetch(target)
		f := ev.at(i)
		if f.err != nil {
			return w, f.err
		}
		w.found[w.n] = i
		w.n++
		if f.rec != nil {
			w.records++
			if f.rec.PSD != PSDUnknown {
				break
			}
		}
		if w.n == 1 && labelCount(target) > maxWalkQueries {
			target = lastLabels(target, maxWalkQueries-1)
			continue
		}
		target = parent(target)
	}
	return w, nil
}

// orgFromWalk selects the organizational domain of d from a walk (RFC 9989
// §4.10.2): the nearest record with psd=n; one label below a record with
// psd=y (unless that record is at the walk's own start, which cannot have
// anything below it on the way to d, and fromStart says whether the walk
// started at d); otherwise the record with the fewest labels; otherwise d
// itself. It also returns the psd=y record when that decided the answer.
func (ev *eval) orgFromWalk(w *walked, d string, fromStart bool) (string, *fetched) {
	best := ""
	for _, i := range w.found[:w.n] {
		f := ev.at(i)
		if f.rec == nil {
			continue
		}
		switch {
		case f.rec.PSD == PSDNo:
			return f.domain, nil
		case f.rec.PSD == PSDYes && !(fromStart && f.domain == d):
			return childToward(d, f.domain), f
		}
		best = f.domain // later entries have fewer labels
	}
	if best == "" {
		return d, nil
	}
	return best, nil
}

// orgDomain returns the organizational domain of the normalized domain d.
func (ev *eval) orgDomain(d string) (string, error) {
	if ev.e.Spec == RFC7489 {
		return ev.e.orgDomain7489(d), nil
	}
	w, err := ev.walk(d)
	if err != nil {
		return "", err
	}
	org, _ := ev.orgFromWalk(&w, d, true)
	return org, nil
}

// orgDomain7489 applies RFC 7489 §3.2: the public suffix plus one label, or
// the domain itself when it is a public suffix.
func (e *Evaluator) orgDomain7489(d string) string {
	var suffix string
	if e.PublicSuffixList != nil {
		suffix = e.PublicSuffixList.PublicSuffix(d)
	} else {
		suffix, _ = publicsuffix.PublicSuffix(d)
	}
	if suffix == "" || suffix == d || !isSubdomainOrSame(d, suffix) {
		return d
	}
	return childToward(d, suffix)
}

// recordCache keeps parsed records by their text, so that a warm DNS cache
// does not mean parsing the same record for every message. Records are
// shared and must not be modified. It keeps two generations of at most
// recordCacheSize records: when the current one is full it becomes the
// old one and the one before is dropped, and a record found in the old
// generation moves to the current one. So the records in use survive a
// turnover (mail from more domains than one generation holds, each with a
// record of its own, as "rua=mailto:dmarc@<domain>" makes them, does not
// mean parsing every time), and a hostile stream of distinct records
// costs parsing time, never more than two generations of memory.
type recordCache struct {
	mu  sync.RWMutex
	m   map[recordKey]parsed // current generation
	old map[recordKey]parsed
}

type recordKey struct {
	txt  string
	spec Spec
}

type parsed struct {
	rec *Record
	err error
}

// recordCacheSize is the size of one generation. A parsed record takes
// about 850 bytes (its URIs parsed), so two generations of 1024 stay under
// 2 MiB; 4096 held 7 MiB on a server seeing 100,000 From domains, where
// most records (each naming its own domain in rua) are seen once an hour
// and caching them saves little. Beyond the busiest 1024, a record is
// parsed again: about 4 µs, 1% of what a message costs.
const recordCacheSize = 1024

func (c *recordCache) parse(txt string, spec Spec) (*Record, error) {
	k := recordKey{txt, spec}
	c.mu.RLock()
	p, ok := c.m[k]
	promote := false
	if !ok {
		p, ok = c.old[k]
		promote = ok
	}
	c.mu.RUnlock()
	if promote {
		c.put(k, p)
	}
	if ok {
		return p.rec, p.err
	}
	rec, err := Parse(txt, spec)
	c.put(k, parsed{rec, err})
	return rec, err
}

// put adds p to the current generation, turning it over when full.
func (c *recordCache) put(k recordKey, p parsed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= recordCacheSize {
		c.old, c.m = c.m, make(map[recordKey]parsed, 64)
	}
	c.m[k] = p
}
