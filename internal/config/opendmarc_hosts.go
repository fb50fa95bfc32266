package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ignoreHosts reads the IgnoreHosts file into ignore.hosts. OpenDMARC
// matches a client by the most specific entry that covers its address,
// where "!" before an entry excludes what it covers; dmarcd has no
// exclusions, so they are subtracted from the ranges they are in. Host
// names cannot be matched against an address: "localhost" becomes the
// loopback addresses, other names are left out with a warning.
//
// As in OpenDMARC 1.4, the file replaces the default (127.0.0.1, which
// dmarcd extends with ::1).
func (cv *odConverter) ignoreHosts(e *odEntry) {
	var pos, neg []netip.Prefix
	ok := cv.readList(e, func(file string, n int, word string) {
		negated := strings.HasPrefix(word, "!")
		w := strings.TrimPrefix(word, "!")
		p, err := parseODHost(w)
		var ps []netip.Prefix
		switch {
		case err == nil:
			ps = []netip.Prefix{p}
		case strings.EqualFold(strings.TrimSuffix(w, "."), "localhost"):
			ps = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
			cv.warnIn(e, file, n, fmt.Sprintf("%s read as 127.0.0.1 and ::1: dmarcd matches client addresses, not names", word))
		case !strings.Contains(w, "/") && isHostname(strings.TrimPrefix(w, ".")) && !isDigits(strings.ReplaceAll(w, ".", "")):
			cv.warnIn(e, file, n, fmt.Sprintf("%s left out: dmarcd matches the client's IP address, not its host name; list the host's addresses instead", word))
			return
		default:
			cv.failIn(e, file, n, err)
			return
		}
		if negated {
			neg = append(neg, ps...)
		} else {
			pos = append(pos, ps...)
		}
	})
	if !ok {
		return
	}
	cv.c.Ignore.Hosts = subtractPrefixes(pos, neg)
	cv.set(e, "ignore.hosts")
}

// parseODHost reads an address or CIDR of an IgnoreHosts file: "192.0.2.1",
// "2001:db8::1", "192.0.2.0/24", "192.0.2.0/255.255.255.0",
// "2001:db8::/32".
func parseODHost(s string) (netip.Prefix, error) {
	addrText, bitsText, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrText)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address, CIDR or host name", s)
	}
	if !hasBits {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	bits := -1
	if m, err := netip.ParseAddr(bitsText); err == nil && m.Is4() && a.Is4() {
		bits = maskBits(m.As4())
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("%q: %s is not a network mask", s, bitsText)
		}
	} else if isDigits(bitsText) {
		if n, err := strconv.Atoi(bitsText); err == nil && n <= a.BitLen() {
			bits = n
		}
	}
	if bits < 0 {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address, CIDR or host name", s)
	}
	p := netip.PrefixFrom(a, bits)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set, so OpenDMARC never matched it (did you mean %q?)", s, m.String())
	}
	return p, nil
}

// maskBits returns the prefix length of a contiguous IPv4 network mask,
// or -1.
func maskBits(m [4]byte) int {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := 0
	for n < 32 && v&(1<<(31-n)) != 0 {
		n++
	}
	if n < 32 && v<<n != 0 {
		return -1
	}
	return n
}

// subtractPrefixes returns the addresses covered by pos and not excluded
// by neg under OpenDMARC's rule, the most specific entry wins and an
// exclusion wins a tie: each range of pos less the exclusions inside it.
// Ranges covered by another are dropped.
func subtractPrefixes(pos, neg []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range pos {
		pieces := []netip.Prefix{p}
		for _, n := range neg {
			if n.Bits() < p.Bits() || !p.Contains(n.Addr()) {
				continue // an exclusion wider than p loses to p
			}
			var next []netip.Prefix
			for _, q := range pieces {
				switch {
				case !q.Overlaps(n):
					next = append(next, q)
				case n.Bits() > q.Bits():
					next = append(next, splitOut(q, n)...)
				}
				// Otherwise n covers q: q goes.
			}
			pieces = next
		}
		slices.SortFunc(pieces, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		out = append(out, pieces...)
	}
	var kept []netip.Prefix
	for i, q := range out {
		covered := false
		for j, r := range out {
			if i != j && r.Bits() <= q.Bits() && r.Contains(q.Addr()) && (r.Bits() < q.Bits() || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, q)
		}
	}
	return kept
}

// splitOut returns q less n, for n strictly inside q: the sibling of each
// prefix on the way down from q to n.
func splitOut(q, n netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for bits := q.Bits(); bits < n.Bits(); bits++ {
		half := netip.PrefixFrom(n.Addr(), bits+1).Masked()
		out = append(out, netip.PrefixFrom(flipBit(half.Addr(), bits), bits+1))
	}
	return out
}

// flipBit flips bit i of a, counting from the most significant.
func flipBit(a netip.Addr, i int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		b[i/8] ^= 0x80 >> (i % 8)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[i/8] ^= 0x80 >> (i % 8)
	return netip.AddrFrom16(b)
}
