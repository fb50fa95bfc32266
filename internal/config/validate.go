package config

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnscache"
)

// Limits that Validate enforces.
const (
	// MinIdleTimeout is the least milter.idle_timeout: Postfix's default
	// smtpd_timeout. Postfix leaves the milter idle while it waits for a
	// slow SMTP client, up to that long per command; a milter that gives
	// up sooner makes Postfix apply milter_default_action.
	MinIdleTimeout = 300 * time.Second
	// MaxDNSBudget is the most milter.dns_budget may be, well under
	// Postfix's milter_content_timeout (300s).
	MaxDNSBudget = 60 * time.Second
	// MaxMessageSize is the most dkim.max_message_size may be.
	MaxMessageSize = GiB
	// MinHeapTarget and MaxHeapTarget bound heap_target (when not 0).
	MinHeapTarget = 16 * MiB
	MaxHeapTarget = 64 * GiB
	// maxReplyLine is the longest SMTP reply line without CRLF (RFC 5321
	// §4.5.3.1.5).
	maxReplyLine = 510
)

// Validate checks c and reports every problem as Errors, each with the key
// path and no line (Parse adds the lines). It also puts c in canonical
// form: domain lists (ignore.from_domains, ignore.mail_from_domains,
// override domains) become A-labels in lower case without a trailing dot,
// and ignore.recipients lower case, as do the report destinations
// (reports.suppress, reports.destination match) and report domains.
func (c *Config) Validate() error {
	v := &validator{}
	v.top(c)
	v.listeners(c.Listeners)
	v.milter(&c.Milter)
	v.policy(&c.Policy)
	v.ignore(&c.Ignore)
	v.dkim(&c.DKIM)
	v.arc(&c.ARC)
	v.overrides(c.Overrides)
	v.dns(&c.DNS, c.Milter.DNSBudget)
	v.log(&c.Log)
	v.store(&c.Store, c.StateDir)
	v.reports(&c.Reports, &c.Store)
	v.failureReports(&c.FailureReports, &c.Reports)
	v.received(&c.Received)
	v.http(&c.HTTP)
	return v.errs.err()
}

type validator struct{ errs Errors }

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{Key: key, Err: fmt.Errorf(format, args...)})
}

func (v *validator) failErr(key string, err error) {
	v.errs = append(v.errs, &Error{Key: key, Err: err})
}

func (v *validator) top(c *Config) {
	if c.Spec != dmarc.RFC9989 && c.Spec != dmarc.RFC7489 {
		v.fail("spec", "unknown DMARC spec %s (want \"rfc9989\" or \"rfc7489\")", c.Spec)
	}
	if c.AuthservID != "" {
		if err := checkAuthservID(c.AuthservID); err != nil {
			v.failErr("authserv_id", err)
		}
	}
	for i, id := range c.TrustedAuthservIDs {
		if err := checkAuthservID(id); err != nil {
			v.failErr(indexKey("trusted_authserv_ids", i), err)
		}
	}
	if c.StateDir == "" {
		v.failErr("state_dir", errEmpty)
	} else if !path.IsAbs(c.StateDir) {
		v.fail("state_dir", "%q is not an absolute path", c.StateDir)
	}
	for _, f := range []struct{ key, val string }{
		{"pid_file", c.PIDFile}, {"public_suffix_list", c.PublicSuffixList}, {"history_file", c.HistoryFile},
	} {
		if f.val != "" && !path.IsAbs(f.val) {
			v.fail(f.key, "%q is not an absolute path", f.val)
		}
	}
	if c.User != "" {
		if err := checkUser(c.User); err != nil {
			v.failErr("user", err)
		}
	}
	if m, set := c.Umask.Mask(); set && m&^0o777 != 0 {
		v.fail("umask", "%o has bits beyond 0777", uint32(m))
	}
	if c.CopyFailuresTo != "" {
		v.mailbox("copy_failures_to", &c.CopyFailuresTo)
	}
	if c.HeapTarget != 0 && (c.HeapTarget < MinHeapTarget || c.HeapTarget > MaxHeapTarget) {
		v.fail("heap_target", "%s is out of range: \"0B\" (Go's default) or %s to %s", c.HeapTarget, MinHeapTarget, MaxHeapTarget)
	}
}

// mailbox checks the address *s of key and puts it in canonical form.
func (v *validator) mailbox(key string, s *string) {
	if err := checkMailbox(*s); err != nil {
		v.failErr(key, err)
		return
	}
	*s = normalizeMailbox(*s)
}

// checkUser accepts "user" or "user:group", each a name or a number.
func checkUser(s string) error {
	user, group, hasGroup := strings.Cut(s, ":")
	bad := func(r rune) bool { return r <= ' ' || r == ':' || r == 0x7f }
	switch {
	case user == "":
		return fmt.Errorf("%q: want \"user\" or \"user:group\"", s)
	case hasGroup && group == "":
		return fmt.Errorf("%q: empty group after ':' (leave out ':' for the user's own groups)", s)
	case strings.IndexFunc(user, bad) >= 0 || strings.IndexFunc(group, bad) >= 0:
		return fmt.Errorf("%q: want \"user\" or \"user:group\", names or numbers without spaces", s)
	}
	return nil
}

// checkMailbox accepts an address local@domain, without angle brackets.
func checkMailbox(s string) error {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return fmt.Errorf("%q is not an address (local@domain)", s)
	}
	local := s[:i]
	if strings.IndexFunc(local, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' }) >= 0 {
		return fmt.Errorf("%q: the local part has white space, control characters or angle brackets (write the bare address)", s)
	}
	if _, err := dmarc.NormalizeDomain(s[i+1:]); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

// normalizeMailbox puts the domain of a checked address in canonical form;
// the local part is kept as written, since it may be case-sensitive.
func normalizeMailbox(s string) string {
	i := strings.LastIndexByte(s, '@')
	d, _ := dmarc.NormalizeDomain(s[i+1:])
	return s[:i+1] + d
}

// checkAuthservID accepts an RFC 8601 authserv-id written as a MIME token:
// printable ASCII without spaces or the tspecials ()<>@,;:\"/[]?=.
func checkAuthservID(id string) error {
	if id == "" {
		return errEmpty
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return fmt.Errorf("%q: an authserv-id is one token: no white space, ';' or other special characters", id)
		}
	}
	return nil
}

func (v *validator) listeners(ls []Listener) {
	if len(ls) == 0 {
		v.fail("listener", "at least one [[listener]] is required")
		return
	}
	for i, l := range ls {
		p := indexKey("listener", i)
		if l.Address.IsZero() {
			v.fail(joinKey(p, "address"), "required")
		}
		if !listenerModes.valid(uint8(l.Mode)) {
			v.fail(joinKey(p, "mode"), "invalid listener mode %d", l.Mode)
		}
		for _, f := range []struct{ key, val string }{{"socket_owner", l.SocketOwner}, {"socket_group", l.SocketGroup}} {
			switch {
			case f.val == "":
			case !l.Address.IsZero() && !l.Address.IsUnix():
				v.fail(joinKey(p, f.key), "applies to unix sockets only, and %s is TCP", l.Address)
			case strings.IndexFunc(f.val, func(r rune) bool { return r <= ' ' || r == ':' || r == 0x7f }) >= 0:
				v.fail(joinKey(p, f.key), "%q is not a user or group name or number", f.val)
			}
		}
		if l.SocketMode&^0o777 != 0 {
			v.fail(joinKey(p, "socket_mode"), "%o has bits beyond 0777", uint32(l.SocketMode))
		}
		if l.Address.IsZero() {
			continue
		}
		for j := range i {
			if why := l.Address.conflict(ls[j].Address); why != "" {
				v.fail(joinKey(p, "address"), "%s conflicts with listener[%d].address %s: %s",
					l.Address, j, ls[j].Address, why)
				break
			}
		}
	}
}

func (v *validator) milter(m *Milter) {
	if m.MaxConnections < 1 {
		v.fail("milter.max_connections", "must be at least 1, not %d", m.MaxConnections)
	}
	if m.IdleTimeout.Duration() <= MinIdleTimeout {
		v.fail("milter.idle_timeout", "%s is too short: it must exceed Postfix's smtpd_timeout (300s)", m.IdleTimeout)
	}
	v.positive("milter.write_timeout", m.WriteTimeout)
	if v.positive("milter.dns_budget", m.DNSBudget) && m.DNSBudget.Duration() > MaxDNSBudget {
		v.fail("milter.dns_budget", "%s is too long: at most %gs, to stay well under Postfix's milter_content_timeout (300s)",
			m.DNSBudget, MaxDNSBudget.Seconds())
	}
	v.positive("milter.shutdown_timeout", m.ShutdownTimeout)
}

// positive reports whether d > 0, failing key if not.
func (v *validator) positive(key string, d Duration) bool {
	if d <= 0 {
		v.fail(key, "must be positive, not %s", d)
		return false
	}
	return true
}

func (v *validator) policy(p *Policy) {
	for _, e := range []struct {
		key   string
		names enumNames
		val   uint8
	}{
		{"policy.reject", rejectActions, uint8(p.Reject)},
		{"policy.quarantine", quarantineActions, uint8(p.Quarantine)},
		{"policy.temperror", tempErrorActions, uint8(p.TempError)},
		{"policy.permerror", permErrorActions, uint8(p.PermError)},
		{"policy.multiple_from", multipleFromActions, uint8(p.MultipleFrom)},
		{"policy.missing_from", missingFromActions, uint8(p.MissingFrom)},
		{"policy.missing_dkim_result", missingDKIMActions, uint8(p.MissingDKIMResult)},
	} {
		if !e.names.valid(e.val) {
			v.fail(e.key, "invalid %s %d", e.names.what, e.val)
		}
	}
	if _, err := ParseReply(p.RejectReply, '5'); err != nil {
		v.failErr("policy.reject_reply", err)
	}
	if _, err := ParseReply(p.TempFailReply, '4'); err != nil {
		v.failErr("policy.tempfail_reply", err)
	}
}

// Reply is an SMTP reply template split into its parts.
type Reply struct {
	Code     uint16 // 550
	Enhanced string // "5.7.1"
	Text     string // may hold {domain}
}

// ParseReply reads an SMTP reply template: "550 5.7.1 text" with a basic
// code of the class given ('4' or '5'), an RFC 3463 enhanced status code
// of the same class, and printable ASCII text in which {domain} is the
// only placeholder. The longest expansion must fit an SMTP reply line.
func ParseReply(s string, class byte) (Reply, error) {
	if err := checkReply(s, class); err != nil {
		return Reply{}, err
	}
	code, rest, _ := strings.Cut(s, " ")
	enh, text, _ := strings.Cut(rest, " ")
	n, _ := strconv.Atoi(code)
	return Reply{Code: uint16(n), Enhanced: enh, Text: text}, nil
}

func checkReply(s string, class byte) error {
	want := fmt.Sprintf("want %q", string(class)+"xy "+string(class)+".y.z text")
	code, rest, _ := strings.Cut(s, " ")
	enh, text, _ := strings.Cut(rest, " ")
	switch {
	case s == "":
		return fmt.Errorf("empty; %s", want)
	case len(code) != 3 || !isDigits(code) || code[1] > '5':
		return fmt.Errorf("%q does not start with a reply code; %s", s, want)
	case code[0] != class:
		return fmt.Errorf("reply code %s is not %cxx; %s", code, class, want)
	}
	parts := strings.Split(enh, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !isDigits(parts[0]) ||
		!isDigits(parts[1]) || len(parts[1]) > 3 || !isDigits(parts[2]) || len(parts[2]) > 3 {
		return fmt.Errorf("%q has no enhanced status code (RFC 3463) after %s; %s", s, code, want)
	}
	if parts[0][0] != class {
		return fmt.Errorf("enhanced status code %s does not match reply code %s (class %c)", enh, code, class)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%q has no text after the codes; %s", s, want)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return fmt.Errorf("%q: only printable ASCII is allowed (byte %#02x at %d)", s, s[i], i)
		}
	}
	for rest := s; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		if ph := rest[i : i+j+1]; ph != "{domain}" && isBareKey(ph[1:len(ph)-1]) {
			return fmt.Errorf("unknown placeholder %s (only {domain} is replaced)", ph)
		}
		rest = rest[i+j+1:]
	}
	n := strings.Count(s, "{domain}")
	if long := len(s) + n*(253-len("{domain}")); long > maxReplyLine {
		return fmt.Errorf("too long: with a 253-byte domain the reply is %d bytes; SMTP allows %d", long, maxReplyLine)
	}
	return nil
}

func (v *validator) ignore(ig *Ignore) {
	for i, p := range ig.Hosts {
		switch {
		case !p.IsValid():
			v.fail(indexKey("ignore.hosts", i), "invalid IP prefix")
		case p.Masked() != p:
			v.fail(indexKey("ignore.hosts", i), "%s has host bits set (did you mean %s?)", p, p.Masked())
		}
	}
	v.domainList("ignore.from_domains", ig.FromDomains)
	v.domainList("ignore.mail_from_domains", ig.MailFromDomains)
	for i, r := range ig.Recipients {
		n, err := normalizeRecipient(r)
		if err != nil {
			v.failErr(indexKey("ignore.recipients", i), err)
			continue
		}
		ig.Recipients[i] = n
	}
}

func (v *validator) dkim(d *DKIM) {
	switch {
	case d.MaxMessageSize <= 0:
		v.fail("dkim.max_message_size", "must be positive, not %s", d.MaxMessageSize)
	case d.MaxMessageSize > MaxMessageSize:
		v.fail("dkim.max_message_size", "%s is too large: at most %s, since the message is held in memory", d.MaxMessageSize, MaxMessageSize)
	}
}

func (v *validator) arc(a *ARC) {
	for i, d := range a.TrustedSealers {
		p := indexKey("arc.trusted_sealers", i)
		if strings.HasPrefix(d, "*.") {
			v.fail(p, "%q: sealers are exact domains, without \"*.\"", d)
			continue
		}
		n, err := dmarc.NormalizeDomain(d)
		if err != nil {
			v.failErr(p, err)
			continue
		}
		a.TrustedSealers[i] = n
	}
}

func (v *validator) domainList(key string, list []string) {
	for i, d := range list {
		n, err := NormalizeDomainPattern(d)
		if err != nil {
			v.failErr(indexKey(key, i), err)
			continue
		}
		list[i] = n
	}
}

// NormalizeDomainPattern returns the canonical form of a domain list entry:
// a domain ("example.com", matching that domain only) or "*." and a domain
// ("*.example.com", matching its subdomains only), normalized with
// dmarc.NormalizeDomain.
func NormalizeDomainPattern(s string) (string, error) {
	rest, wild := strings.CutPrefix(s, "*.")
	n, err := dmarc.NormalizeDomain(rest)
	if err != nil {
		return "", err
	}
	if wild {
		return "*." + n, nil
	}
	return n, nil
}

// normalizeRecipient checks an ignore.recipients entry, an address or
// "@domain", and returns it in lower case with the domain normalized.
func normalizeRecipient(s string) (string, error) {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		hint := ""
		if _, err := dmarc.NormalizeDomain(s); err == nil {
			hint = fmt.Sprintf(" (did you mean %q?)", "@"+s)
		}
		return "", fmt.Errorf("%q is neither an address nor \"@domain\"%s", s, hint)
	}
	local, domain := s[:i], s[i+1:]
	if strings.IndexFunc(local, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return "", fmt.Errorf("%q: the local part has white space or control characters", s)
	}
	d, err := dmarc.NormalizeDomain(domain)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return strings.ToLower(local) + "@" + d, nil
}

func (v *validator) overrides(list []Override) {
	seen := map[string]int{}
	for i, o := range list {
		p := indexKey("override", i)
		switch n, err := NormalizeDomainPattern(o.Domain); {
		case o.Domain == "":
			v.fail(joinKey(p, "domain"), "required")
		case err != nil:
			v.failErr(joinKey(p, "domain"), err)
		default:
			list[i].Domain = n
			if j, dup := seen[n]; dup {
				v.fail(joinKey(p, "domain"), "%s already has override[%d]", n, j)
			} else {
				seen[n] = i
			}
		}
		switch o.Policy {
		case dmarc.PolicyUnset:
			v.fail(joinKey(p, "policy"), "required: \"none\", \"quarantine\" or \"reject\"")
		case dmarc.PolicyNone, dmarc.PolicyQuarantine, dmarc.PolicyReject:
		default:
			v.fail(joinKey(p, "policy"), "invalid policy %d", o.Policy)
		}
		if strings.IndexFunc(o.Comment, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			v.fail(joinKey(p, "comment"), "must be one line without control characters")
		}
	}
}

func (v *validator) dns(d *DNS, budget Duration) {
	for i, ns := range d.Nameservers {
		if err := checkNameserver(ns); err != nil {
			v.failErr(indexKey("dns.nameservers", i), err)
		}
	}
	if v.positive("dns.timeout", d.Timeout) && budget > 0 && d.Timeout > budget {
		v.fail("dns.timeout", "%s exceeds milter.dns_budget (%s), which bounds all DNS work for a message", d.Timeout, budget)
	}
	if d.Attempts < 1 {
		v.fail("dns.attempts", "must be at least 1, not %d", d.Attempts)
	}
	if d.CacheSize < 1 || d.CacheSize > dnscache.MaxEntries {
		v.fail("dns.cache_size", "must be from 1 to %d, not %d", dnscache.MaxEntries, d.CacheSize)
	}
	if d.MinTTL < 0 {
		v.fail("dns.min_ttl", "must not be negative")
	}
	maxOK := v.positive("dns.max_ttl", d.MaxTTL)
	negOK := v.positive("dns.negative_max_ttl", d.NegativeMaxTTL)
	switch {
	case maxOK && d.MinTTL > d.MaxTTL:
		v.fail("dns.min_ttl", "%s exceeds dns.max_ttl (%s)", d.MinTTL, d.MaxTTL)
	case negOK && d.MinTTL > d.NegativeMaxTTL:
		v.fail("dns.min_ttl", "%s exceeds dns.negative_max_ttl (%s)", d.MinTTL, d.NegativeMaxTTL)
	}
}

// checkNameserver accepts "ip", "ip:port" and "[ipv6]:port".
func checkNameserver(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	withPort := err == nil
	if !withPort {
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("%q: a nameserver is an IP address with an optional port (\"192.0.2.53\", \"192.0.2.53:53\", \"[2001:db8::53]:53\")", s)
	}
	if withPort {
		if _, err := parsePort(port); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
	}
	return nil
}

func (v *validator) log(l *Log) {
	if _, ok := levelNames[formatLevel(l.Level)]; !ok {
		v.fail("log.level", "unsupported log level %s (want \"debug\", \"info\", \"warn\" or \"error\")", strconv.Quote(formatLevel(l.Level)))
	}
	if !logFormats.valid(uint8(l.Format)) {
		v.fail("log.format", "invalid log format %d", l.Format)
	}
	if !slices.Contains(SyslogFacilities, l.SyslogFacility) {
		v.fail("log.syslog_facility", "unknown syslog facility %q (want mail, daemon, local0 to local7, ...; see syslog.conf(5))%s",
			l.SyslogFacility, didYouMean(l.SyslogFacility, SyslogFacilities))
	}
}
