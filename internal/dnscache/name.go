package dnscache

import (
	"errors"
	"fmt"

	"github.com/dmarcd/dmarcd/dmarc"
)

// ErrInvalidName is wrapped by the error of a lookup for a name that cannot
// exist in the DNS: empty, longer than 253 octets, with an empty label or a
// label longer than 63 octets, or with a backslash (which the wire encoder
// would read as an escape and so ask for another name). No query is sent.
//
// It wraps dmarc.ErrNXDomain, because a name that cannot be written on the
// wire certainly does not exist, and that is the answer that does the right
// thing upstream: the DMARC tree walk moves on past an over-long _dmarc
// name, SPF reads an invalid domain as "none" (RFC 7208 §4.3), and a
// malformed name never turns into a temperror that would defer mail
// forever.
var ErrInvalidName error = invalidNameError{}

type invalidNameError struct{}

func (invalidNameError) Error() string { return "invalid domain name" }
func (invalidNameError) Unwrap() error { return dmarc.ErrNXDomain }

// Limits of RFC 1035 §2.3.4, in presentation form without the final dot.
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// normalize returns name in the form the cache keys on: lowercase (ASCII
// only, RFC 4343), without the final dot, the root as ".". It allocates only
// when name has uppercase letters, so the common lookup of a lowercase name
// is free.
func normalize(name string) (string, error) {
	if name == "." {
		return name, nil
	}
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return lower(name, i), nil
		}
	}
	return name, nil
}

// lower returns name with ASCII letters lowercase, knowing that name[:i]
// already is.
func lower(name string, i int) string {
	b := []byte(name)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// checkName reports why name, without its final dot, cannot be a domain
// name, or nil if it can.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name longer than %d octets", maxNameLen)
	}
	label := 0
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '.':
			if label == 0 {
				return errors.New("empty label")
			}
			label = 0
		case '\\':
			return errors.New("backslash in name")
		default:
			label++
			if label > maxLabelLen {
				return fmt.Errorf("label longer than %d octets", maxLabelLen)
			}
		}
	}
	if label == 0 {
		return errors.New("empty label")
	}
	return nil
}
