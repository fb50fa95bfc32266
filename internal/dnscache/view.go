package dnscache

import (
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// view returns records of type qtype in the shape the typed lookup
// of that type returns, or nil for a type that has none. One TXT record is
// returned as a *[1]string, which LookupTXT slices: a cache of DMARC
// records is mostly that, and it saves the slice header.
func view(qtype uint16, records []dns.RR) any {
	switch qtype {
	case dns.TypeTXT:
		if len(records) == 1 {
			if rr, ok := records[0].(*dns.TXT); ok {
				return &[1]string{joinTXT(rr.Txt)}
			}
		}
		txt := make([]string, 0, len(records))
		for _, rr := range records {
			if rr, ok := rr.(*dns.TXT); ok {
				txt = append(txt, joinTXT(rr.Txt))
			}
		}
		return txt
	case dns.TypeA, dns.TypeAAAA:
		addrs := make([]net.IPAddr, 0, len(records))
		for _, rr := range records {
			switch rr := rr.(type) {
			case *dns.A:
				addrs = append(addrs, net.IPAddr{IP: rr.A})
			case *dns.AAAA:
				addrs = append(addrs, net.IPAddr{IP: rr.AAAA})
			}
		}
		return addrs
	case dns.TypeMX:
		mxs := make([]*net.MX, 0, len(records))
		for _, rr := range records {
			if rr, ok := rr.(*dns.MX); ok {
				mxs = append(mxs, &net.MX{Host: rr.Mx, Pref: rr.Preference})
			}
		}
		slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
		return mxs
	case dns.TypePTR:
		names := make([]string, 0, len(records))
		for _, rr := range records {
			if rr, ok := rr.(*dns.PTR); ok {
				names = append(names, rr.Ptr)
			}
		}
		return names
	}
	return nil
}

// joinTXT returns the character-strings of one TXT record joined with
// nothing between them, as DMARC (RFC 7489 §6.6.3) and SPF (RFC 7208 §3.3)
// read them. miekg/dns hands the strings over in presentation form, with
// '"', '\' and unprintable octets escaped; they are unescaped back to the
// octets on the wire.
func joinTXT(parts []string) string {
	if len(parts) == 1 {
		return unescape(parts[0])
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(unescape(p))
	}
	return b.String()
}

// unescape undoes the escaping of miekg/dns: \X is X and \DDD is the octet
// of decimal value DDD.
func unescape(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b = append(b, byte(n))
				i += 3
				continue
			}
		}
		i++
		b = append(b, s[i])
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
