package arc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dmarcd/dmarcd/internal/authres"
)

// Chain validation statuses (RFC 8617 §4.4), the values of Result.CV.
const (
	CVNone = "none"
	CVPass = "pass"
	CVFail = "fail"
)

// Limits on hostile input.
const (
	maxSets      = 50 // RFC 8617 §4.2.1: i= is at most 50
	maxARCFields = 3 * maxSets
	maxFieldLen  = 64 * 1024  // one ARC header field
	maxARCBytes  = 512 * 1024 // all ARC header fields together
	maxSigned    = 256        // names in an AMS's h=
	maxHashes    = 4          // distinct (c=, l=) body hashes computed
	// headerBudget bounds the header octets hashed for the older AMSs,
	// which only serve oldest-pass: fifty AMSs each signing hundreds of
	// large fields would otherwise cost seconds of CPU.
	headerBudget = 8 << 20
)

// Field is one header field of the message.
type Field struct {
	// Name is the field name, without the colon.
	Name string
	// Value is everything after the colon, folding included, leading
	// whitespace included (see MilterField).
	Value string
	// Raw, when not empty, is the whole field exactly as received,
	// "Name:" included, line breaks as LF or CRLF, with or without the
	// final line break. It takes precedence over Name and Value.
	Raw string
}

// MilterField builds a Field from what a milter gets for one header field:
// the name and the value as the MTA passed them. leadingSpace says whether
// the MTA was asked to keep the whitespace after the colon (SMFIP_HDR_LEADSPC,
// go-milter's OptHeaderLeadingSpace). Without it, Sendmail and Postfix remove
// one space after the colon, and MilterField puts it back: the field then
// has its original bytes whenever it was written "Name: value", as signers
// and sealers write theirs. Only c=simple header canonicalization (rare in
// ARC) can tell the difference.
func MilterField(name, value string, leadingSpace bool) Field {
	if !leadingSpace {
		value = " " + value
	}
	return Field{Name: name, Value: value}
}

// split returns the field's name and value.
func (f Field) split() (name, value string) {
	if f.Raw == "" {
		return f.Name, f.Value
	}
	raw := strings.TrimSuffix(f.Raw, "\n")
	raw = strings.TrimSuffix(raw, "\r")
	name, value, _ = strings.Cut(raw, ":")
	return name, value
}

// Result is the outcome of validating a chain.
type Result struct {
	// CV is the chain validation status: CVNone, CVPass or CVFail, or
	// empty when Verify returned an error.
	CV string
	// Reason says why the chain failed, or what could not be checked when
	// Verify returned an error; empty for none and pass.
	Reason string
	// Sets are the ARC sets found, oldest (i=1) first, as far as they
	// could be read. They are authenticated only when CV is CVPass.
	Sets []Set
	// OldestPass is RFC 8617's oldest-pass for a passing chain: 0 when
	// every ARC-Message-Signature verifies, otherwise the lowest instance
	// of the run of verifying ones that ends at the newest.
	OldestPass int
}

// Set is what one ARC set says.
type Set struct {
	// Instance is its i=, from 1.
	Instance int
	// CV is the chain status its sealer declared (the ARC-Seal's cv=).
	CV string
	// SealDomain and SealSelector are the ARC-Seal's d= and s=: who
	// sealed. A trusted sealer is recognized by SealDomain.
	SealDomain, SealSelector string
	// MessageDomain and MessageSelector are the ARC-Message-Signature's
	// d= and s=.
	MessageDomain, MessageSelector string
	// AAR is the parsed ARC-Authentication-Results payload, after "i=N;":
	// what the sealer found when the message reached it. It is nil when
	// the payload does not parse; it holds the clauses that did when only
	// some do (see authres.Parse).
	AAR *authres.Header
	// ClientIP is the address the sealer received the message from, when
	// its AAR says: the first smtp.remote-ip, else smtp.client-ip, else an
	// iprev result's policy.iprev.
	ClientIP string
}

// Verify validates the ARC chain of a message (RFC 8617 §5.2); the package
// documentation says how and what headers and body must be. lookup returns
// the TXT records at a name, with the errors of dmarc.Resolver (a
// dnscache.Resolver's LookupTXT fits) and must not be nil. The body is
// read only when the chain needs it; a nil body is an empty one.
//
// A nil error comes with CV set. An error means the chain could not be
// judged: a DNS failure that may pass (the error wraps dmarc.ErrTemporary),
// a cancelled ctx, or a body that could not be read; the caller should
// treat the chain as unknown, neither pass nor fail.
func Verify(ctx context.Context, headers []Field, body io.Reader, lookup func(ctx context.Context, name string) ([]string, error)) (Result, error) {
	v := NewVerifier(headers)
	if v.NeedsBody() && body != nil {
		if _, err := io.Copy(v, body); err != nil {
			return Result{Reason: "reading the body: " + err.Error(), Sets: v.sets()}, fmt.Errorf("arc: reading the body: %w", err)
		}
	}
	return v.Verify(ctx, lookup)
}

// Verifier validates the ARC chain of one message as it streams: create it
// when the header has been read, Write the body to it chunk by chunk, and
// call Verify at the end of the message. It is not safe for concurrent use.
type Verifier struct {
	fields []field
	byName map[string][]int // lowercase name → indexes into fields, in order
	chain  []*arcSet        // by instance - 1
	final  *Result          // decided without the body and the DNS
	bodies []*bodyCanon
	hashes map[hashKey]*bodyHash
	ended  bool
	keys   keys
	hashed int // header octets hashed for AMSs so far
}

type field struct {
	name, value string
}

type hashKey struct {
	c     canon
	limit int64
}

// arcSet is one ARC set as parsed.
type arcSet struct {
	instance     int
	aar, ams, as int // indexes into fields, -1 when absent
	amsTags      tagList
	asTags       tagList
	aarHeader    *authres.Header
	msgSig       amsInfo
	seal         sealInfo
}

type amsInfo struct {
	alg        keyType
	domain     string
	selector   string
	hc, bc     canon
	limit      int64 // -1 without l=
	headers    []string
	bodyHash   []byte
	sig        []byte
	hash       *bodyHash // nil when not computed
	bTag       tag
	wellFormed bool
}

type sealInfo struct {
	alg      keyType
	domain   string
	selector string
	cv       string
	sig      []byte
	bTag     tag
}

// NewVerifier reads the header of a message, fields in order, top first.
// Everything that can be checked without the body and the DNS is checked
// now: NeedsBody then says whether the body is worth feeding.
func NewVerifier(headers []Field) *Verifier {
	v := &Verifier{byName: make(map[string][]int)}
	v.fields = make([]field, len(headers))
	for i, f := range headers {
		name, value := f.split()
		v.fields[i] = field{name: name, value: value}
		lname := strings.ToLower(strings.TrimRight(name, " \t"))
		v.byName[lname] = append(v.byName[lname], i)
	}
	if r := v.parse(); r != nil {
		v.final = r
		return v
	}
	v.setupBodies()
	return v
}

// NeedsBody reports whether Verify needs the body: false when the chain is
// already decided (no ARC sets, or a broken structure). A milter may then
// skip the body.
func (v *Verifier) NeedsBody() bool { return v.final == nil }

// Sets returns the ARC sets as read from the header, oldest first, before
// any signature is checked: nothing in them is authenticated yet. A milter
// can use it at the end of the header to skip the body and the DNS when
// no trusted sealer appears.
func (v *Verifier) Sets() []Set { return v.sets() }

// Write feeds the next chunk of the body. It never fails; after Verify it
// discards what it is given.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.final != nil || v.ended {
		return len(p), nil
	}
	for _, b := range v.bodies {
		b.Write(p)
	}
	return len(p), nil
}

func (v *Verifier) fail(format string, args ...any) *Result {
	return &Result{CV: CVFail, Reason: fmt.Sprintf(format, args...), Sets: v.sets()}
}

const (
	nameAAR = "arc-authentication-results"
	nameAMS = "arc-message-signature"
	nameAS  = "arc-seal"
)

// parse collects and checks the ARC sets (RFC 8617 §5.2 steps 1 to 3). It
// returns the result when that is already decided.
func (v *Verifier) parse() *Result {
	n := len(v.byName[nameAAR]) + len(v.byName[nameAMS]) + len(v.byName[nameAS])
	if n == 0 {
		return &Result{CV: CVNone}
	}
	if n > maxARCFields {
		return v.fail("%d ARC header fields, more than %d sets can hold", n, maxSets)
	}
	total := 0
	for _, kind := range []string{nameAAR, nameAMS, nameAS} {
		for _, idx := range v.byName[kind] {
			total += len(v.fields[idx].value)
		}
	}
	if total > maxARCBytes {
		return v.fail("ARC header fields of %d bytes in all, more than %d", total, maxARCBytes)
	}
	for _, kind := range []string{nameAAR, nameAMS, nameAS} {
		for _, idx := range v.byName[kind] {
			if r := v.collect(kind, idx); r != nil {
				return r
			}
		}
	}
	// The chain must be 1..N without gaps.
	for i, s := range v.chain {
		if s == nil {
			return v.fail("ARC set i=%d is missing", i+1)
		}
		switch {
		case s.aar < 0:
			return v.fail("ARC set i=%d has no ARC-Authentication-Results", i+1)
		case s.ams < 0:
			return v.fail("ARC set i=%d has no ARC-Message-Signature", i+1)
		case s.as < 0:
			return v.fail("ARC set i=%d has no ARC-Seal", i+1)
		}
	}
	nth := len(v.chain)
	// Step 2: a chain its newest sealer declared failed stays failed.
	if cv, _ := v.chain[nth-1].asTags.get("cv"); strings.EqualFold(cv, CVFail) {
		return v.fail("ARC-Seal i=%d says cv=fail", nth)
	}
	for _, s := range v.chain {
		if err := v.readSeal(s); err != nil {
			return v.fail("ARC-Seal i=%d: %v", s.instance, err)
		}
		want := CVPass
		if s.instance == 1 {
			want = CVNone
		}
		if s.seal.cv != want {
			return v.fail("ARC-Seal i=%d says cv=%s, want %s", s.instance, s.seal.cv, want)
		}
	}
	for _, s := range v.chain {
		err := v.readAMS(s)
		if err != nil && s.instance == nth {
			return v.fail("ARC-Message-Signature i=%d: %v", s.instance, err)
		}
		// A malformed older AMS only counts for oldest-pass.
	}
	return nil
}

// collect files the ARC field at idx in its set.
func (v *Verifier) collect(kind string, idx int) *Result {
	f := v.fields[idx]
	label := map[string]string{nameAAR: "ARC-Authentication-Results", nameAMS: "ARC-Message-Signature", nameAS: "ARC-Seal"}[kind]
	if len(f.value) > maxFieldLen {
		return v.fail("%s field longer than %d bytes", label, maxFieldLen)
	}
	var (
		inst int
		err  error
		tags tagList
		aar  *authres.Header
	)
	if kind == nameAAR {
		var payload string
		inst, payload, err = aarInstance(f.value)
		if err == nil {
			aar, _ = authres.Parse(payload)
		}
	} else {
		tags, err = parseTags(f.value)
		if err == nil {
			i, ok := tags.get("i")
			if !ok {
				err = errors.New("no i= tag")
			} else {
				inst, err = parseInstance(i)
			}
		}
	}
	if err != nil {
		return v.fail("%s field does not parse: %v", label, err)
	}
	for len(v.chain) < inst {
		v.chain = append(v.chain, nil)
	}
	s := v.chain[inst-1]
	if s == nil {
		s = &arcSet{instance: inst, aar: -1, ams: -1, as: -1}
		v.chain[inst-1] = s
	}
	switch kind {
	case nameAAR:
		if s.aar >= 0 {
			return v.fail("ARC set i=%d has two %s fields", inst, label)
		}
		s.aar, s.aarHeader = idx, aar
	case nameAMS:
		if s.ams >= 0 {
			return v.fail("ARC set i=%d has two %s fields", inst, label)
		}
		s.ams, s.amsTags = idx, tags
	case nameAS:
		if s.as >= 0 {
			return v.fail("ARC set i=%d has two %s fields", inst, label)
		}
		s.as, s.asTags = idx, tags
	}
	return nil
}

// parseInstance reads an instance number: 1 to 50, no leading zero
// (RFC 8617 §4.2.1).
func parseInstance(s string) (int, error) {
	if len(s) == 0 || len(s) > 2 || s[0] < '1' || s[0] > '9' || (len(s) == 2 && !isDigit(s[1])) {
		return 0, fmt.Errorf("invalid instance %q", truncate(s))
	}
	n := int(s[0] - '0')
	if len(s) == 2 {
		n = n*10 + int(s[1]-'0')
	}
	if n > maxSets {
		return 0, fmt.Errorf("instance %d above %d", n, maxSets)
	}
	return n, nil
}

// aarInstance reads the "i=N;" that starts an ARC-Authentication-Results
// value and returns N and the Authentication-Results payload after it.
func aarInstance(value string) (int, string, error) {
	p := 0
	skip := func() {
		for p < len(value) && isFWSByte(value[p]) {
			p++
		}
	}
	skip()
	if p >= len(value) || (value[p] != 'i' && value[p] != 'I') {
		return 0, "", errors.New("does not start with i=")
	}
	p++
	skip()
	if p >= len(value) || value[p] != '=' {
		return 0, "", errors.New("does not start with i=")
	}
	p++
	skip()
	start := p
	for p < len(value) && value[p] != ';' && !isFWSByte(value[p]) {
		p++
	}
	n, err := parseInstance(value[start:p])
	if err != nil {
		return 0, "", err
	}
	skip()
	if p >= len(value) || value[p] != ';' {
		return 0, "", errors.New("no ';' after the instance")
	}
	return n, value[p+1:], nil
}

// readSeal checks the tags of an ARC-Seal.
func (v *Verifier) readSeal(s *arcSet) error {
	t := s.asTags
	for _, name := range []string{"a", "b", "cv", "d", "s"} {
		if _, ok := t.get(name); !ok {
			return fmt.Errorf("no %s= tag", name)
		}
	}
	if _, ok := t.get("h"); ok {
		return errors.New("h= is not allowed in an ARC-Seal")
	}
	var err error
	si := &s.seal
	a, _ := t.get("a")
	if si.alg, err = parseAlg(a); err != nil {
		return err
	}
	cv, _ := t.get("cv")
	switch si.cv = strings.ToLower(cv); si.cv {
	case CVNone, CVPass, CVFail:
	default:
		return fmt.Errorf("invalid cv=%s", truncate(cv))
	}
	if si.domain, si.selector, err = domainSelector(t); err != nil {
		return err
	}
	if err := checkTime(t); err != nil {
		return err
	}
	si.bTag, _ = t.find("b")
	if si.sig, err = decodeB64(si.bTag.value, "b"); err != nil {
		return err
	}
	return nil
}

// readAMS checks the tags of an ARC-Message-Signature.
func (v *Verifier) readAMS(s *arcSet) error {
	t := s.amsTags
	for _, name := range []string{"a", "b", "bh", "d", "h", "s"} {
		if _, ok := t.get(name); !ok {
			return fmt.Errorf("no %s= tag", name)
		}
	}
	var err error
	ai := &s.msgSig
	a, _ := t.get("a")
	if ai.alg, err = parseAlg(a); err != nil {
		return err
	}
	if ai.domain, ai.selector, err = domainSelector(t); err != nil {
		return err
	}
	c, ok := t.get("c")
	if ai.hc, ai.bc, ok = parseCanon(c, ok); !ok {
		return fmt.Errorf("invalid c=%s", truncate(c))
	}
	ai.limit = -1
	if l, ok := t.get("l"); ok {
		if l == "" || len(l) > 18 || strings.TrimLeft(l, "0123456789") != "" {
			return fmt.Errorf("invalid l=%s", truncate(l))
		}
		var n int64
		for i := 0; i < len(l); i++ {
			n = n*10 + int64(l[i]-'0')
		}
		ai.limit = n
	}
	if q, ok := t.get("q"); ok && !listHas(q, "dns/txt") {
		return fmt.Errorf("unsupported q=%s", truncate(q))
	}
	if err := checkTime(t); err != nil {
		return err
	}
	h, _ := t.get("h")
	if ai.headers, err = signedNames(h); err != nil {
		return err
	}
	bh, _ := t.get("bh")
	if ai.bodyHash, err = decodeB64(bh, "bh"); err != nil {
		return err
	}
	if len(ai.bodyHash) != sha256.Size {
		return fmt.Errorf("bh= of %d bytes, not a SHA-256 hash", len(ai.bodyHash))
	}
	ai.bTag, _ = t.find("b")
	if ai.sig, err = decodeB64(ai.bTag.value, "b"); err != nil {
		return err
	}
	ai.wellFormed = true
	return nil
}

func parseAlg(a string) (keyType, error) {
	switch strings.ToLower(a) {
	case "rsa-sha256":
		return keyRSA, nil
	case "ed25519-sha256":
		return keyEd25519, nil
	}
	return 0, fmt.Errorf("unsupported algorithm a=%s", truncate(a))
}

func domainSelector(t tagList) (domain, selector string, err error) {
	d, _ := t.get("d")
	s, _ := t.get("s")
	if !isDomain(d) {
		return "", "", fmt.Errorf("invalid d=%s", truncate(d))
	}
	if !isDomain(s) {
		return "", "", fmt.Errorf("invalid s=%s", truncate(s))
	}
	return strings.ToLower(d), s, nil
}

// isDomain checks a d= or s= value: dot-separated labels of letters,
// digits, '-' and '_', each 1 to 63 long, 253 in all.
func isDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func checkTime(t tagList) error {
	if ts, ok := t.get("t"); ok {
		if ts == "" || len(ts) > 12 || strings.TrimLeft(ts, "0123456789") != "" {
			return fmt.Errorf("invalid t=%s", truncate(ts))
		}
	}
	return nil
}

// signedNames reads h=: field names separated by ':' with folding
// whitespace around them, lowercased. An ARC-Seal must not be signed by an
// AMS (RFC 8617 §4.1.2).
func signedNames(h string) ([]string, error) {
	if trimFWS(h) == "" {
		return nil, nil
	}
	var names []string
	for n := range strings.SplitSeq(h, ":") {
		n = strings.ToLower(trimFWS(n))
		if strings.ContainsAny(n, " \t\r\n") {
			return nil, fmt.Errorf("invalid h=%s", truncate(h))
		}
		// An empty name ("from::to") selects no field; dkimpy and the
		// ValiMail test suite read it so.
		if n == nameAS {
			return nil, errors.New("h= signs ARC-Seal")
		}
		if len(names) == maxSigned {
			return nil, fmt.Errorf("more than %d names in h=", maxSigned)
		}
		names = append(names, n)
	}
	return names, nil
}

func decodeB64(v, name string) ([]byte, error) {
	v = stripFWS(v)
	if v == "" {
		return nil, fmt.Errorf("empty %s=", name)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%s= is not base64", name)
	}
	return b, nil
}

// setupBodies arranges the body hashes the AMSs need: the newest one's
// always, older ones' while there is room.
func (v *Verifier) setupBodies() {
	v.hashes = make(map[hashKey]*bodyHash)
	for i := len(v.chain) - 1; i >= 0; i-- {
		ai := &v.chain[i].msgSig
		if !ai.wellFormed {
			continue
		}
		k := hashKey{ai.bc, ai.limit}
		h, ok := v.hashes[k]
		if !ok {
			if len(v.hashes) == maxHashes {
				continue
			}
			h = &bodyHash{h: sha256.New(), limit: ai.limit}
			v.hashes[k] = h
			v.body(ai.bc).hashes = append(v.body(ai.bc).hashes, h)
		}
		ai.hash = h
	}
}

func (v *Verifier) body(c canon) *bodyCanon {
	for _, b := range v.bodies {
		if b.c == c {
			return b
		}
	}
	b := &bodyCanon{c: c}
	v.bodies = append(v.bodies, b)
	return b
}

// Verify ends the body and validates the chain; see the package Verify
// for what it returns. lookup must not be nil. Once it has returned a
// status, later calls return the same; after an error, a later call tries
// again the lookups that failed.
func (v *Verifier) Verify(ctx context.Context, lookup func(ctx context.Context, name string) ([]string, error)) (Result, error) {
	if v.final != nil {
		return *v.final, nil
	}
	if !v.ended {
		v.ended = true
		for _, b := range v.bodies {
			b.finish()
		}
	}
	v.keys.lookup = lookup
	v.keys.forgetFailures()
	v.hashed = 0
	res, err := v.verify(ctx)
	if err == nil {
		v.final = &res
	}
	return res, err
}

func (v *Verifier) verify(ctx context.Context) (Result, error) {
	nth := v.chain[len(v.chain)-1]

	// Step 4: the newest AMS.
	var temp error
	var tempWhere string
	ok, why, err := v.verifyAMS(ctx, nth)
	switch {
	case err != nil:
		temp, tempWhere = err, fmt.Sprintf("ARC-Message-Signature i=%d", nth.instance)
	case !ok:
		return *v.fail("ARC-Message-Signature i=%d: %s", nth.instance, why), nil
	}

	// Step 6: every seal, newest first. A definite failure wins over a
	// temporary one: the chain fails whatever the missing answer says.
	for i := len(v.chain) - 1; i >= 0; i-- {
		s := v.chain[i]
		ok, why, err := v.verifySeal(ctx, s)
		switch {
		case err != nil:
			if temp == nil {
				temp, tempWhere = err, fmt.Sprintf("ARC-Seal i=%d", s.instance)
			}
		case !ok:
			return *v.fail("ARC-Seal i=%d: %s", s.instance, why), nil
		}
	}
	if temp != nil {
		return Result{Reason: tempWhere + ": " + temp.Error(), Sets: v.sets()}, fmt.Errorf("arc: %s: %w", tempWhere, temp)
	}

	// Step 5: oldest-pass, best effort: an older AMS that cannot be
	// checked counts as not passing.
	oldest := 0
	for i := len(v.chain) - 2; i >= 0; i-- {
		if ok, _, err := v.verifyAMS(ctx, v.chain[i]); !ok || err != nil {
			oldest = i + 2
			break
		}
	}
	return Result{CV: CVPass, Sets: v.sets(), OldestPass: oldest}, nil
}

// verifyAMS verifies the AMS of s: ok, or why not, or a temporary error.
func (v *Verifier) verifyAMS(ctx context.Context, s *arcSet) (ok bool, why string, err error) {
	ai := &s.msgSig
	if !ai.wellFormed {
		return false, "malformed", nil
	}
	if ai.hash == nil {
		return false, "body hash not computed", nil
	}
	if ai.limit >= 0 && ai.limit > ai.hash.total {
		return false, fmt.Sprintf("l=%d is longer than the body (%d)", ai.limit, ai.hash.total), nil
	}
	if !bytes.Equal(ai.hash.done, ai.bodyHash) {
		return false, "body hash does not match (the body was changed)", nil
	}
	key, err := v.keys.get(ctx, ai.domain, ai.selector)
	if err != nil {
		if ke := (*keyError)(nil); errors.As(err, &ke) {
			return false, ke.msg, nil
		}
		return false, "", err
	}
	if key.typ != ai.alg {
		return false, fmt.Sprintf("%s key for an a=%s signature", key.typ, ai.alg.algName()), nil
	}

	newest := s == v.chain[len(v.chain)-1]
	var data []byte
	used := make(map[string]int, len(ai.headers))
	for _, name := range ai.headers {
		if !newest && v.hashed+len(data) > headerBudget {
			return false, "not checked: too many header octets to hash", nil
		}
		idxs := v.byName[name]
		n, seen := used[name]
		if !seen {
			n = len(idxs)
		}
		if n == 0 {
			used[name] = 0
			continue // a name signed more often than present: nothing
		}
		n--
		used[name] = n
		f := v.fields[idxs[n]]
		data = canonHeader(data, ai.hc, f.name, f.value)
	}
	self := v.fields[s.ams]
	data = canonHeader(data, ai.hc, self.name, emptyB(self.value, ai.bTag))
	data = data[:len(data)-2] // the signature field is hashed without its CRLF
	v.hashed += len(data)
	digest := sha256.Sum256(data)
	if !key.verifySig(digest[:], ai.sig) {
		return false, "signature does not verify", nil
	}
	return true, "", nil
}

// verifySeal verifies the AS of s over the sets 1..s.instance.
func (v *Verifier) verifySeal(ctx context.Context, s *arcSet) (ok bool, why string, err error) {
	si := &s.seal
	key, err := v.keys.get(ctx, si.domain, si.selector)
	if err != nil {
		if ke := (*keyError)(nil); errors.As(err, &ke) {
			return false, ke.msg, nil
		}
		return false, "", err
	}
	if key.typ != si.alg {
		return false, fmt.Sprintf("%s key for an a=%s seal", key.typ, si.alg.algName()), nil
	}
	var data []byte
	for _, set := range v.chain[:s.instance] {
		for _, idx := range []int{set.aar, set.ams, set.as} {
			f := v.fields[idx]
			value := f.value
			if set == s && idx == s.as {
				value = emptyB(value, si.bTag)
			}
			data = canonHeader(data, relaxed, f.name, value)
		}
	}
	data = data[:len(data)-2]
	digest := sha256.Sum256(data)
	if !key.verifySig(digest[:], si.sig) {
		return false, "signature does not verify", nil
	}
	return true, "", nil
}

// emptyB returns the field value with the value of its b= tag removed,
// the whitespace around it included (RFC 6376 §3.7).
func emptyB(value string, b tag) string {
	return value[:b.start] + value[b.end:]
}

// sets describes the sets parsed so far, oldest first.
func (v *Verifier) sets() []Set {
	var out []Set
	for _, s := range v.chain {
		if s == nil {
			continue
		}
		set := Set{Instance: s.instance, AAR: s.aarHeader}
		if s.as >= 0 {
			cv, _ := s.asTags.get("cv")
			set.CV = strings.ToLower(cv)
			d, _ := s.asTags.get("d")
			set.SealDomain = strings.ToLower(d)
			set.SealSelector, _ = s.asTags.get("s")
		}
		if s.ams >= 0 {
			d, _ := s.amsTags.get("d")
			set.MessageDomain = strings.ToLower(d)
			set.MessageSelector, _ = s.amsTags.get("s")
		}
		set.ClientIP = clientIP(s.aarHeader)
		out = append(out, set)
	}
	return out
}

func clientIP(h *authres.Header) string {
	if h == nil {
		return ""
	}
	for _, prop := range [][2]string{{"smtp", "remote-ip"}, {"smtp", "client-ip"}} {
		for _, r := range h.Results {
			if ip, ok := r.Prop(prop[0], prop[1]); ok && ip != "" {
				return ip
			}
		}
	}
	for _, r := range h.Results {
		if r.Method == "iprev" {
			if ip, ok := r.Prop("policy", "iprev"); ok && ip != "" {
				return ip
			}
		}
	}
	return ""
}
