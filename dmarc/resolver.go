package dmarc

import (
	"context"
	"errors"
	"strings"
)

// The errors a Resolver returns, tested with errors.Is. They keep the three
// outcomes DMARC must tell apart: a name that does not exist (NXDOMAIN, which
// selects the np policy), a name that exists but has no records of the type
// asked (NODATA), and a failure that says nothing about the name (SERVFAIL,
// timeout, network error), which must become temperror and never be taken
// for "no policy".
var (
	// ErrNXDomain means the name does not exist (RFC 8020: nor anything below it).
	ErrNXDomain = errors.New("no such domain (NXDOMAIN)")
	// ErrNoRecords means the name exists but holds no records of the type asked.
	ErrNoRecords = errors.New("no records")
	// ErrTemporary means the lookup failed for a reason that may pass: a
	// timeout, SERVFAIL, a refused query or a network error.
	ErrTemporary = errors.New("temporary DNS failure")
)

// Resolver is the DNS that policy discovery reads. Implementations wrap one
// of ErrNXDomain, ErrNoRecords or ErrTemporary in every error they return
// for a failed lookup, so that errors.Is tells the cases apart.
type Resolver interface {
	// LookupTXT returns the TXT records at name, fully qualified without the
	// trailing dot. Each element is one record with its character-strings
	// joined in order (RFC 7489 §6.6.3, RFC 9989 §4.5). The caller must not
	// modify the returned slice: caches may hand out their own copy.
	LookupTXT(ctx context.Context, name string) ([]string, error)

	// Exists reports whether name exists in the DNS: false only for
	// NXDOMAIN, true for any other answer including NODATA (RFC 9989
	// Appendix A.4). An error means the question could not be answered and
	// wraps ErrTemporary.
	Exists(ctx context.Context, name string) (bool, error)
}

// MapResolver is a Resolver backed by a map, for tests and offline use. A
// name is absent (NXDOMAIN) unless it or a name below it is a key; a key
// with an empty slice exists with no TXT records. Names in Fail return their
// error.
type MapResolver struct {
	TXT  map[string][]string
	Fail map[string]error
}

// LookupTXT implements Resolver.
func (m MapResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	name = lowerASCII(strings.TrimSuffix(name, "."))
	if err := m.Fail[name]; err != nil {
		return nil, err
	}
	if txt, ok := m.TXT[name]; ok {
		if len(txt) == 0 {
			return nil, ErrNoRecords
		}
		return txt, nil
	}
	if m.below(name) {
		return nil, ErrNoRecords
	}
	return nil, ErrNXDomain
}

// Exists implements Resolver.
func (m MapResolver) Exists(_ context.Context, name string) (bool, error) {
	name = lowerASCII(strings.TrimSuffix(name, "."))
	if err := m.Fail[name]; err != nil {
		return false, err
	}
	_, ok := m.TXT[name]
	return ok || m.below(name), nil
}

// below reports whether some key lies below name, which makes name an
// existing (empty non-terminal) node.
func (m MapResolver) below(name string) bool {
	for k := range m.TXT {
		if len(k) > len(name) && strings.HasSuffix(k, name) && k[len(k)-len(name)-1] == '.' {
			return true
		}
	}
	return false
}
