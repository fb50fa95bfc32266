package arc

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Bounds on RSA keys. RFC 8301 §3.2: verifiers must not accept keys below
// 1024 bits. Above 8192 bits a key is only a way to make us spend CPU.
const (
	minRSABits = 1024
	maxRSABits = 8192
)

// keyType is the k= of a key record and the key half of a= of a signature.
type keyType uint8

const (
	keyRSA keyType = iota
	keyEd25519
)

func (k keyType) String() string {
	if k == keyEd25519 {
		return "ed25519"
	}
	return "rsa"
}

// algName is the a= value of signatures made with such a key.
func (k keyType) algName() string { return k.String() + "-sha256" }

// pubKey is a usable public key from the DNS.
type pubKey struct {
	typ keyType
	rsa *rsa.PublicKey
	ed  ed25519.PublicKey
}

// keyError is a key that cannot be used: absent, revoked, malformed, too
// weak. The signature it was for fails; nothing about it is temporary.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

func keyErrorf(format string, args ...any) error {
	return &keyError{msg: fmt.Sprintf(format, args...)}
}

// keyResult is the outcome of fetching one key, kept for the other
// signatures of the message made with the same selector.
type keyResult struct {
	key *pubKey
	err error // a *keyError, or a temporary error wrapping dmarc.ErrTemporary
}

// keys fetches and caches the keys of one message.
type keys struct {
	lookup  func(ctx context.Context, name string) ([]string, error)
	results map[string]keyResult
	queries int
}

// maxKeyQueries bounds the DNS queries one message can cause: an ARC-Seal
// and an ARC-Message-Signature for each of at most 50 sets.
const maxKeyQueries = 2 * maxSets

// forgetFailures drops the temporary failures, so that a later Verify
// asks again; within one Verify, a key that failed is not asked twice.
func (k *keys) forgetFailures() {
	for name, r := range k.results {
		if ke := (*keyError)(nil); r.err != nil && !errors.As(r.err, &ke) {
			delete(k.results, name)
			k.queries--
		}
	}
}

func (k *keys) get(ctx context.Context, domain, selector string) (*pubKey, error) {
	name := strings.ToLower(selector + "._domainkey." + domain)
	if r, ok := k.results[name]; ok {
		return r.key, r.err
	}
	var r keyResult
	if k.queries >= maxKeyQueries {
		r.err = keyErrorf("too many key lookups")
	} else {
		k.queries++
		r.key, r.err = fetchKey(ctx, k.lookup, name)
	}
	if k.results == nil {
		k.results = make(map[string]keyResult)
	}
	k.results[name] = r
	return r.key, r.err
}

func fetchKey(ctx context.Context, lookup func(context.Context, string) ([]string, error), name string) (*pubKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("key %s: %w: %w", name, dmarc.ErrTemporary, err)
	}
	txts, err := lookup(ctx, name)
	switch {
	case errors.Is(err, dmarc.ErrNXDomain), errors.Is(err, dmarc.ErrNoRecords):
		return nil, keyErrorf("no key at %s", name)
	case errors.Is(err, dmarc.ErrTemporary):
		return nil, fmt.Errorf("key %s: %w", name, err)
	case err != nil:
		// An error the resolver did not classify says nothing about the
		// key: it must not fail the chain.
		return nil, fmt.Errorf("key %s: %w: %w", name, dmarc.ErrTemporary, err)
	case len(txts) == 0:
		return nil, keyErrorf("no key at %s", name)
	}
	// RFC 6376 §3.6.2.2 leaves several records undefined; use the first
	// that is a key, and report the first problem if none is.
	var first error
	for _, txt := range txts {
		key, err := parseKey(txt)
		if err == nil {
			return key, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, keyErrorf("key %s: %v", name, first)
}

// parseKey reads a DKIM key record (RFC 6376 §3.6.1, RFC 8463 §4).
func parseKey(txt string) (*pubKey, error) {
	if len(txt) > 8192 {
		return nil, errors.New("record too long")
	}
	tags, err := parseKeyTags(txt)
	if err != nil {
		return nil, err
	}
	if v, ok := tags.get("v"); ok && (v != "DKIM1" || tags[0].name != "v") {
		return nil, errors.New("v= is not DKIM1 first")
	}
	if h, ok := tags.get("h"); ok && !listHas(h, "sha256") {
		return nil, errors.New("h= does not allow sha256")
	}
	if s, ok := tags.get("s"); ok && !listHas(s, "*") && !listHas(s, "email") {
		return nil, errors.New("s= does not allow email")
	}
	p, ok := tags.get("p")
	if !ok {
		return nil, errors.New("no p=")
	}
	p = stripFWS(p)
	if p == "" {
		return nil, errors.New("key revoked (empty p=)")
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, errors.New("p= is not base64")
	}
	k, _ := tags.get("k")
	switch k {
	case "", "rsa":
		pub, err := parseRSA(der)
		if err != nil {
			return nil, err
		}
		return &pubKey{typ: keyRSA, rsa: pub}, nil
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 key of %d bytes", len(der))
		}
		return &pubKey{typ: keyEd25519, ed: ed25519.PublicKey(der)}, nil
	default:
		return nil, fmt.Errorf("unknown key type k=%s", truncate(k))
	}
}

// parseRSA reads an RSA key as RFC 6376 writes it, a SubjectPublicKeyInfo,
// or as some publishers do, a bare PKCS#1 RSAPublicKey.
func parseRSA(der []byte) (*rsa.PublicKey, error) {
	var pub *rsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		r, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("p= is not an RSA key")
		}
		pub = r
	} else if r, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
		pub = r
	} else {
		return nil, fmt.Errorf("p= does not parse: %v", err)
	}
	if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA key of %d bits (accepted: %d to %d)", bits, minRSABits, maxRSABits)
	}
	return pub, nil
}

// listHas reports whether the colon-separated list s holds item.
func listHas(s, item string) bool {
	for e := range strings.SplitSeq(s, ":") {
		if trimFWS(e) == item {
			return true
		}
	}
	return false
}

// verifySig checks sig over the SHA-256 digest of the signed data.
// Ed25519-SHA256 (RFC 8463 §3) signs that digest with pure Ed25519.
func (k *pubKey) verifySig(digest, sig []byte) bool {
	switch k.typ {
	case keyRSA:
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest, sig) == nil
	case keyEd25519:
		return ed25519.Verify(k.ed, digest, sig)
	}
	return false
}
