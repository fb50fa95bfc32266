package store

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dmarcd/dmarcd/report"
)

// Key is what makes messages one record of an aggregate report: all that
// the record's XML says except the count. Two rows with equal keys in the
// same hour are counted together. Use KeyOf to make one: it canonicalizes
// (domains lower case without the final dot, lists sorted and without
// duplicates), so that equal messages make equal keys.
type Key struct {
	// PolicyDomain is the domain whose record was applied, where the
	// report goes.
	PolicyDomain string
	SourceIP     netip.Addr
	HeaderFrom   string
	EnvelopeFrom string // "" for the null sender
	// EnvelopeTo are the recipient domains of the message. RFC 9990 has
	// room for one; the XML builder decides what to do with more.
	EnvelopeTo []string
	// Disposition is the applied policy: none, quarantine or reject.
	Disposition string
	// DKIM and SPF are policy_evaluated's: "pass" when aligned and
	// passing, else "fail".
	DKIM, SPF string
	// Reasons are policy_evaluated's override reasons.
	Reasons []report.Override
	// AuthDKIM and AuthSPF are auth_results.
	AuthDKIM []report.DKIMResult
	AuthSPF  []report.SPFResult
}

// Record is a key with the number of messages it stands for.
type Record struct {
	Key
	Count int64
}

// KeyHash identifies a Key: the first 16 bytes of the SHA-256 of its
// canonical encoding.
type KeyHash [16]byte

// String returns the hash in hexadecimal.
func (h KeyHash) String() string { return hex.EncodeToString(h[:]) }

// KeyOf returns the canonical key of r.
func KeyOf(r report.Row) Key {
	k := Key{
		PolicyDomain: domainName(r.Published.Domain),
		SourceIP:     r.SourceIP.Unmap().WithZone(""),
		HeaderFrom:   domainName(r.HeaderFrom),
		EnvelopeFrom: domainName(r.EnvelopeFrom),
		Disposition:  word(r.Disposition),
		DKIM:         passFail(r.DKIMAligned),
		SPF:          passFail(r.SPFAligned),
	}
	for _, d := range r.EnvelopeTo {
		if d = domainName(d); d != "" {
			k.EnvelopeTo = append(k.EnvelopeTo, d)
		}
	}
	slices.Sort(k.EnvelopeTo)
	k.EnvelopeTo = slices.Compact(k.EnvelopeTo)
	for _, o := range r.Overrides {
		k.Reasons = append(k.Reasons, report.Override{Type: word(o.Type), Comment: text(o.Comment)})
	}
	k.Reasons = sortUnique(k.Reasons, func(a, b report.Override) int {
		return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Comment, b.Comment))
	})
	for _, d := range r.DKIM {
		k.AuthDKIM = append(k.AuthDKIM, report.DKIMResult{Domain: domainName(d.Domain), Selector: word(d.Selector), Result: word(d.Result)})
	}
	k.AuthDKIM = sortUnique(k.AuthDKIM, func(a, b report.DKIMResult) int {
		return cmp.Or(strings.Compare(a.Domain, b.Domain), strings.Compare(a.Selector, b.Selector), strings.Compare(a.Result, b.Result))
	})
	for _, s := range r.SPF {
		k.AuthSPF = append(k.AuthSPF, report.SPFResult{Domain: domainName(s.Domain), Scope: word(s.Scope), Result: word(s.Result)})
	}
	k.AuthSPF = sortUnique(k.AuthSPF, func(a, b report.SPFResult) int {
		return cmp.Or(strings.Compare(a.Domain, b.Domain), strings.Compare(a.Scope, b.Scope), strings.Compare(a.Result, b.Result))
	})
	return k
}

// Hash returns the key's hash. The key must be canonical (from KeyOf or
// read from a store).
func (k *Key) Hash() KeyHash {
	// Room for a usual key on the stack: the writer hashes one key per
	// message, and growing from nil made it a fifth of its allocations.
	buf := make([]byte, 0, 512)
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	count := func(n int) { buf = binary.AppendUvarint(buf, uint64(n)) }
	str("dmarcd key v1")
	str(k.PolicyDomain)
	str(ipString(k.SourceIP))
	str(k.HeaderFrom)
	str(k.EnvelopeFrom)
	count(len(k.EnvelopeTo))
	for _, d := range k.EnvelopeTo {
		str(d)
	}
	str(k.Disposition)
	str(k.DKIM)
	str(k.SPF)
	count(len(k.Reasons))
	for _, o := range k.Reasons {
		str(o.Type)
		str(o.Comment)
	}
	count(len(k.AuthDKIM))
	for _, d := range k.AuthDKIM {
		str(d.Domain)
		str(d.Selector)
		str(d.Result)
	}
	count(len(k.AuthSPF))
	for _, s := range k.AuthSPF {
		str(s.Domain)
		str(s.Scope)
		str(s.Result)
	}
	sum := sha256.Sum256(buf)
	var h KeyHash
	copy(h[:], sum[:])
	return h
}

// ReportID returns the report_id of the report of domain for p, made by
// the reporter named: a hash of the three, so the same report always gets
// the same ID, on every node and after any crash, and two organisations
// that both run dmarcd (and set their names) do not make equal IDs.
func ReportID(reporter, domain string, p Period) string {
	s := "dmarcd report v1\x00" + reporter + "\x00" + domainName(domain) + "\x00" +
		strconv.FormatInt(p.Begin.Unix(), 10) + "\x00" + strconv.FormatInt(p.End.Unix(), 10)
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// Batch is a set of rows rolled up in memory by hour and key, ready for one
// Store.Ingest: a thousand equal messages become one count of 1,000. Rows
// without a published policy (Row.Published.Domain empty) have nowhere to
// be reported to and are left out. The zero Batch is ready to use; a Batch
// is not safe for concurrent use.
type Batch struct {
	rows, skipped int64
	counts        map[countKey]int64
	keys          map[KeyHash]*batchKey
	hours         map[hourKey]*batchHour
}

type countKey struct {
	hour int64 // unix seconds
	hash KeyHash
}

type batchKey struct {
	key         Key
	first, last int64 // hours, unix seconds
}

type hourKey struct {
	domain string
	hour   int64
}

// batchHour is the policy seen last in an hour of the batch.
type batchHour struct {
	policy report.Published
	seen   time.Time
}

// Add counts r in the batch, in the hour of r.Time (now when zero). It
// reports false when r was left out for having no published policy.
func (b *Batch) Add(r report.Row) bool {
	if r.Published.Domain == "" {
		b.skipped++
		return false
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	k := KeyOf(r)
	b.AddKey(k, t, 1, r.Published)
	return true
}

// AddKey counts n messages of the canonical key k at time t, whose policy
// was p. It is Add for callers that roll up themselves.
func (b *Batch) AddKey(k Key, t time.Time, n int64, p report.Published) {
	b.add(&k, k.Hash(), t, n, &p)
}

// add is AddKey with the hash of k already computed.
func (b *Batch) add(k *Key, h KeyHash, t time.Time, n int64, p *report.Published) {
	if b.counts == nil {
		b.counts = make(map[countKey]int64)
		b.keys = make(map[KeyHash]*batchKey)
		b.hours = make(map[hourKey]*batchHour)
	}
	hour := Hour(t).Unix()
	b.rows += n
	b.counts[countKey{hour, h}] += n
	if bk := b.keys[h]; bk == nil {
		b.keys[h] = &batchKey{key: *k, first: hour, last: hour}
	} else {
		bk.first, bk.last = min(bk.first, hour), max(bk.last, hour)
	}
	hk := hourKey{k.PolicyDomain, hour}
	bh := b.hours[hk]
	if bh == nil {
		bh = &batchHour{}
		b.hours[hk] = bh
	}
	if !t.Before(bh.seen) {
		bh.policy, bh.seen = *p, t
	}
}

// Rows returns how many rows the batch counts.
func (b *Batch) Rows() int64 { return b.rows }

// Skipped returns how many rows Add left out for having no policy.
func (b *Batch) Skipped() int64 { return b.skipped }

// Len returns how many (hour, key) counts the batch holds: the rows it
// will write.
func (b *Batch) Len() int { return len(b.counts) }

// Reset empties the batch for reuse.
func (b *Batch) Reset() {
	b.rows, b.skipped = 0, 0
	clear(b.counts)
	clear(b.keys)
	clear(b.hours)
}

// countRow is one count of a batch, as written.
type countRow struct {
	domain string
	hour   int64
	hash   KeyHash
	n      int64
}

// sortedCounts returns the batch's counts in the order every writer takes
// its row locks in: by domain, hour and hash, so that concurrent
// transactions of several nodes never deadlock.
func (b *Batch) sortedCounts() []countRow {
	rs := make([]countRow, 0, len(b.counts))
	for ck, n := range b.counts {
		rs = append(rs, countRow{b.keys[ck.hash].key.PolicyDomain, ck.hour, ck.hash, n})
	}
	slices.SortFunc(rs, func(x, y countRow) int {
		return cmp.Or(strings.Compare(x.domain, y.domain), cmp.Compare(x.hour, y.hour), slices.Compare(x.hash[:], y.hash[:]))
	})
	return rs
}

func (b *Batch) sortedKeys() []KeyHash {
	hs := make([]KeyHash, 0, len(b.keys))
	for h := range b.keys {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(x, y KeyHash) int { return slices.Compare(x[:], y[:]) })
	return hs
}

func (b *Batch) sortedHours() []hourKey {
	hs := make([]hourKey, 0, len(b.hours))
	for hk := range b.hours {
		hs = append(hs, hk)
	}
	slices.SortFunc(hs, func(x, y hourKey) int {
		return cmp.Or(strings.Compare(x.domain, y.domain), cmp.Compare(x.hour, y.hour))
	})
	return hs
}

// Lists are kept in the database as JSON arrays of these.
type (
	jsonReason struct {
		Type    string `json:"type"`
		Comment string `json:"comment,omitempty"`
	}
	jsonDKIM struct {
		Domain   string `json:"domain"`
		Selector string `json:"selector"`
		Result   string `json:"result"`
	}
	jsonSPF struct {
		Domain string `json:"domain"`
		Scope  string `json:"scope"`
		Result string `json:"result"`
	}
)

// keyLists returns the JSON of the key's lists: envelope_to, reasons,
// auth_dkim, auth_spf. It writes what json.Marshal of the json* types
// would, without its reflection: this runs for every new key.
func (k *Key) keyLists() (to, reasons, dkim, spf string) {
	var b []byte
	b = append(b, '[')
	for i, d := range k.EnvelopeTo {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, d)
	}
	to = string(append(b, ']'))
	b = append(b[:0], '[')
	for i, o := range k.Reasons {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(b, `{"type":`...), o.Type)
		if o.Comment != "" {
			b = appendJSONString(append(b, `,"comment":`...), o.Comment)
		}
		b = append(b, '}')
	}
	reasons = string(append(b, ']'))
	b = append(b[:0], '[')
	for i, d := range k.AuthDKIM {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(b, `{"domain":`...), d.Domain)
		b = appendJSONString(append(b, `,"selector":`...), d.Selector)
		b = appendJSONString(append(b, `,"result":`...), d.Result)
		b = append(b, '}')
	}
	dkim = string(append(b, ']'))
	b = append(b[:0], '[')
	for i, s := range k.AuthSPF {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(b, `{"domain":`...), s.Domain)
		b = appendJSONString(append(b, `,"scope":`...), s.Scope)
		b = appendJSONString(append(b, `,"result":`...), s.Result)
		b = append(b, '}')
	}
	spf = string(append(b, ']'))
	return to, reasons, dkim, spf
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// setKeyLists is the inverse of keyLists.
func (k *Key) setKeyLists(to, reasons, dkim, spf string) error {
	var rs []jsonReason
	var ds []jsonDKIM
	var ss []jsonSPF
	for _, f := range []struct {
		s string
		v any
	}{{to, &k.EnvelopeTo}, {reasons, &rs}, {dkim, &ds}, {spf, &ss}} {
		if err := json.Unmarshal([]byte(f.s), f.v); err != nil {
			return err
		}
	}
	k.Reasons, k.AuthDKIM, k.AuthSPF = nil, nil, nil
	for _, r := range rs {
		k.Reasons = append(k.Reasons, report.Override(r))
	}
	for _, d := range ds {
		k.AuthDKIM = append(k.AuthDKIM, report.DKIMResult(d))
	}
	for _, s := range ss {
		k.AuthSPF = append(k.AuthSPF, report.SPFResult(s))
	}
	if len(k.EnvelopeTo) == 0 {
		k.EnvelopeTo = nil
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs of strings are marshalled
	}
	return string(b)
}

func sortUnique[T comparable](s []T, cmp func(a, b T) int) []T {
	slices.SortFunc(s, cmp)
	return slices.Compact(s)
}

// text makes s storable anywhere: valid UTF-8 without NUL, which
// PostgreSQL refuses in text.
func text(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// word is a keyword: stored in lower case.
func word(s string) string { return strings.ToLower(strings.TrimSpace(text(s))) }

// domainName is a domain name: lower case, no final dot.
func domainName(s string) string { return strings.TrimSuffix(word(s), ".") }

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

// ipString formats an address the way it is stored; the invalid address
// (a row from a connection without an IP) is "".
func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// addressDomain returns the domain part of a mail address, lower case.
func addressDomain(addr string) string {
	return domainName(addr[strings.LastIndexByte(addr, '@')+1:])
}

func suppressionMatches(pattern, address string) bool {
	p := strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(pattern)), "*"), ".")
	a := strings.ToLower(strings.TrimSpace(address))
	if p == "" {
		return false
	}
	if strings.Contains(p, "@") {
		return p == a
	}
	d := addressDomain(a)
	return d == p || strings.HasSuffix(d, "."+p)
}
