package config

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Store says where the aggregate report data is kept, the [store] table.
type Store struct {
	// Driver is the database: the embedded SQLite file (the default) or
	// PostgreSQL, which several dmarcd nodes can share.
	Driver StoreDriver `toml:"driver"`

	// Path is the SQLite database file; "" means dmarcd.db in StateDir.
	Path string `toml:"path"`

	// DSN is the PostgreSQL connection string, a URL or key=value pairs.
	DSN string `toml:"dsn"`

	// DSNFile is a file holding the DSN, to keep its password out of
	// dmarcd.toml. At most one of DSN and DSNFile.
	DSNFile string `toml:"dsn_file"`

	// FlushInterval is the longest a row waits in memory before it is
	// written: with FlushRows, it bounds what a crash loses.
	FlushInterval Duration `toml:"flush_interval"`

	// FlushRows starts a write as soon as this many rows wait.
	FlushRows int `toml:"flush_rows"`

	// QueueSize is how many rows may wait to be written; when the
	// database is down or too slow, more are dropped (and counted)
	// rather than slow the MTA down.
	QueueSize int `toml:"queue_size"`
}

// Reports configures the aggregate reports dmarcd sends, the [reports]
// table.
type Reports struct {
	// Enabled sends reports. Off by default: an MTA must not start mailing
	// the world until its administrator decides it should.
	Enabled bool `toml:"enabled"`

	// OrgName is report_metadata's org_name: who is reporting.
	OrgName string `toml:"org_name"`

	// FromName is the display name of the reports' From field.
	FromName string `toml:"from_name"`

	// FromAddress is the reports' From address and envelope sender.
	FromAddress string `toml:"from_address"`

	// ContactEmail is report_metadata's email; "" means FromAddress.
	ContactEmail string `toml:"contact_email"`

	// ContactInfo is report_metadata's extra_contact_info.
	ContactInfo string `toml:"contact_info"`

	// Submitter is the reporting domain of the Subject and the file name;
	// "" means the domain of FromAddress.
	Submitter string `toml:"submitter"`

	// IntervalFloor is the shortest report period: a record's ri below it
	// is raised to it. IntervalNever sends no reports at all.
	IntervalFloor Cadence `toml:"interval_floor"`

	// IntervalCeiling is the longest report period.
	IntervalCeiling Cadence `toml:"interval_ceiling"`

	// CloseDelay is how long after a period ends its report is made.
	CloseDelay Duration `toml:"close_delay"`

	// MaxBacklog is how old a period may be and still be reported.
	MaxBacklog Duration `toml:"max_backlog"`

	// Format is the XML format of reports.
	Format ReportFormat `toml:"format"`

	// MaxSize is the largest report sent, measured as "!size" is.
	MaxSize Size `toml:"max_size"`

	// Spread is the window over which one period's reports leave.
	Spread Duration `toml:"spread"`

	// RatePerDestination limits deliveries to one destination domain.
	RatePerDestination Rate `toml:"rate_per_destination"`

	// RateGlobal limits deliveries in all.
	RateGlobal Rate `toml:"rate_global"`

	// Concurrency bounds the sends, and the destination checks, in
	// progress.
	Concurrency int `toml:"concurrency"`

	// RetryBackoff is the first wait after a temporary failure, doubled
	// at each further one up to RetryBackoffMax.
	RetryBackoff Duration `toml:"retry_backoff"`

	// RetryBackoffMax is the longest wait between two attempts.
	RetryBackoffMax Duration `toml:"retry_backoff_max"`

	// RetryMaxAge is how long a destination that keeps deferring is
	// retried.
	RetryMaxAge Duration `toml:"retry_max_age"`

	// Suppress are destinations never sent to: addresses or domains.
	Suppress []string `toml:"suppress"`

	// SuppressAfter suppresses a destination after that many permanent
	// failures in a row; 0 never does.
	SuppressAfter int `toml:"suppress_after"`

	// ExpireAfter is how long report data is kept; 0 keeps it for ever.
	ExpireAfter Duration `toml:"expire_after"`

	// Relay is the SMTP server report mail is handed to.
	Relay Relay `toml:"relay"`

	// DKIM signs report mail.
	DKIM ReportDKIM `toml:"dkim"`

	// Destinations choose the format per destination.
	Destinations []ReportDestination `toml:"destination"`
}

// Relay is the SMTP server report mail is handed to, the [reports.relay]
// table.
type Relay struct {
	// Address is host:port; a missing port means 25.
	Address string `toml:"address"`

	// StartTLS is how TLS to the relay is used.
	StartTLS StartTLSMode `toml:"starttls"`

	// Username and Password (or PasswordFile) authenticate with AUTH.
	Username     string `toml:"username"`
	Password     string `toml:"password"`
	PasswordFile string `toml:"password_file"`

	// HeloName is the name given in EHLO; "" means the host name.
	HeloName string `toml:"helo_name"`

	// Timeout bounds each step of an SMTP session.
	Timeout Duration `toml:"timeout"`
}

// ReportDKIM is the DKIM signing of report mail, the [reports.dkim] table.
type ReportDKIM struct {
	// Domain is the d= of the signatures.
	Domain string `toml:"domain"`

	// Selector and Key are the RSA key: a PEM file, published at
	// Selector._domainkey.Domain.
	Selector string `toml:"selector"`
	Key      string `toml:"key"`

	// Ed25519Selector and Ed25519Key add an Ed25519 signature (RFC 8463).
	Ed25519Selector string `toml:"ed25519_selector"`
	Ed25519Key      string `toml:"ed25519_key"`
}

// ReportDestination picks the format of the reports sent to the
// destinations Match matches, a [[reports.destination]] table.
type ReportDestination struct {
	// Match is an address, or a domain covering its subdomains.
	Match string `toml:"match"`

	// Format is the XML format sent there.
	Format ReportFormat `toml:"format"`
}

// defaultStore is the [store] of Default.
func defaultStore() Store {
	return Store{Driver: DriverSQLite, FlushInterval: Duration(time.Second), FlushRows: 1000, QueueSize: 100_000}
}

// defaultReports is the [reports] of Default.
func defaultReports() Reports {
	return Reports{
		FromName:           "DMARC aggregate reports",
		IntervalFloor:      IntervalHourly,
		IntervalCeiling:    IntervalDaily,
		CloseDelay:         Duration(5 * time.Minute),
		MaxBacklog:         Duration(5 * 24 * time.Hour),
		Format:             FormatRFC7489,
		MaxSize:            25 * MiB,
		Spread:             Duration(2 * time.Hour),
		RatePerDestination: Rate{N: 100, Per: Duration(time.Hour)},
		RateGlobal:         Rate{N: 1000, Per: Duration(time.Hour)},
		Concurrency:        4,
		RetryBackoff:       Duration(5 * time.Minute),
		RetryBackoffMax:    Duration(4 * time.Hour),
		RetryMaxAge:        Duration(5 * 24 * time.Hour),
		SuppressAfter:      5,
		ExpireAfter:        Duration(90 * 24 * time.Hour),
		Relay:              Relay{Address: "localhost:25", StartTLS: StartTLSOpportunistic, Timeout: Duration(5 * time.Minute)},
	}
}

// StoreDriver is the database of the report store.
type StoreDriver uint8

// The store drivers. The zero value is DriverSQLite.
const (
	DriverSQLite StoreDriver = iota
	DriverPostgres
)

var storeDrivers = enumNames{"store driver", []string{"sqlite", "postgres"}}

// String returns "sqlite" or "postgres".
func (d StoreDriver) String() string { return storeDrivers.name(uint8(d)) }

// MarshalText implements encoding.TextMarshaler.
func (d StoreDriver) MarshalText() ([]byte, error) { return storeDrivers.marshal(uint8(d)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *StoreDriver) UnmarshalText(b []byte) error {
	v, err := storeDrivers.parse(b)
	if err == nil {
		*d = StoreDriver(v)
	}
	return err
}

// Cadence bounds report periods.
type Cadence uint8

// The cadences. The zero value is IntervalHourly.
const (
	IntervalHourly Cadence = iota
	IntervalDaily
	IntervalWeekly
	// IntervalNever, as a floor, sends no reports.
	IntervalNever
)

var cadences = enumNames{"report interval", []string{"hourly", "daily", "weekly", "never"}}

// String returns "hourly", "daily", "weekly" or "never".
func (c Cadence) String() string { return cadences.name(uint8(c)) }

// Duration returns the period length of c, 0 for IntervalNever.
func (c Cadence) Duration() time.Duration {
	return [...]time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 0}[min(c, IntervalNever)]
}

// MarshalText implements encoding.TextMarshaler.
func (c Cadence) MarshalText() ([]byte, error) { return cadences.marshal(uint8(c)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Cadence) UnmarshalText(b []byte) error {
	v, err := cadences.parse(b)
	if err == nil {
		*c = Cadence(v)
	}
	return err
}

// ReportFormat is the XML format of aggregate reports.
type ReportFormat uint8

// The report formats. The zero value is FormatRFC7489.
const (
	// FormatRFC7489 is RFC 7489 Appendix C, what every consumer reads.
	FormatRFC7489 ReportFormat = iota
	// FormatRFC9990 is RFC 9990, namespace urn:ietf:params:xml:ns:dmarc-2.0.
	FormatRFC9990
)

var reportFormats = enumNames{"report format", []string{"rfc7489", "rfc9990"}}

// String returns "rfc7489" or "rfc9990".
func (f ReportFormat) String() string { return reportFormats.name(uint8(f)) }

// MarshalText implements encoding.TextMarshaler.
func (f ReportFormat) MarshalText() ([]byte, error) { return reportFormats.marshal(uint8(f)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *ReportFormat) UnmarshalText(b []byte) error {
	v, err := reportFormats.parse(b)
	if err == nil {
		*f = ReportFormat(v)
	}
	return err
}

// StartTLSMode is how report mail uses TLS to the relay.
type StartTLSMode uint8

// The StartTLS modes. The zero value is StartTLSOpportunistic.
const (
	// StartTLSOpportunistic uses STARTTLS when offered, without checking
	// the certificate.
	StartTLSOpportunistic StartTLSMode = iota
	// StartTLSRequired insists on STARTTLS with a valid certificate.
	StartTLSRequired
	// StartTLSNone never uses TLS.
	StartTLSNone
)

var startTLSModes = enumNames{"starttls mode", []string{"opportunistic", "required", "none"}}

// String returns "opportunistic", "required" or "none".
func (m StartTLSMode) String() string { return startTLSModes.name(uint8(m)) }

// MarshalText implements encoding.TextMarshaler.
func (m StartTLSMode) MarshalText() ([]byte, error) { return startTLSModes.marshal(uint8(m)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *StartTLSMode) UnmarshalText(b []byte) error {
	v, err := startTLSModes.parse(b)
	if err == nil {
		*m = StartTLSMode(v)
	}
	return err
}

// Rate is a rate limit written "N/duration": at most N in any window of
// that length ("100/1h", "10/1m", "2000/1d"). "unlimited" sets none; the
// zero Rate is unlimited.
type Rate struct {
	N   int
	Per Duration
}

// Unlimited reports whether r sets no limit.
func (r Rate) Unlimited() bool { return r.N <= 0 || r.Per <= 0 }

// String returns "N/duration" or "unlimited".
func (r Rate) String() string {
	if r.Unlimited() {
		return "unlimited"
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

// MarshalText implements encoding.TextMarshaler with String.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseRate.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err == nil {
		*r = v
	}
	return err
}

// ParseRate reads a rate limit: "N/duration" with N a whole number and
// the duration as ParseDuration reads it, or "unlimited". A limit of 0
// per anything is unlimited.
func ParseRate(s string) (Rate, error) {
	if s == "unlimited" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok || !isDigits(n) {
		return Rate{}, fmt.Errorf("invalid rate %q: want a count and a duration such as \"100/1h\", or \"unlimited\"", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil {
		return Rate{}, fmt.Errorf("invalid rate %q: count too large", s)
	}
	d, err := ParseDuration(per)
	if err != nil {
		return Rate{}, fmt.Errorf("invalid rate %q: %w", s, err)
	}
	if d <= 0 {
		return Rate{}, fmt.Errorf("invalid rate %q: the duration must be positive", s)
	}
	if count == 0 {
		return Rate{}, nil
	}
	return Rate{N: count, Per: d}, nil
}

// Minimums that Validate enforces on [store] and [reports].
const (
	// minFlushInterval keeps group commit from becoming one commit per row.
	minFlushInterval = 10 * time.Millisecond
)

func (v *validator) store(s *Store, stateDir string) {
	if !storeDrivers.valid(uint8(s.Driver)) {
		v.fail("store.driver", "invalid store driver %d", s.Driver)
	}
	switch s.Driver {
	case DriverSQLite:
		if s.DSN != "" || s.DSNFile != "" {
			key := "store.dsn"
			if s.DSN == "" {
				key = "store.dsn_file"
			}
			v.fail(key, `applies to driver = "postgres" only`)
		}
		if s.Path != "" && !path.IsAbs(s.Path) {
			v.fail("store.path", "%q is not an absolute path", s.Path)
		}
	case DriverPostgres:
		switch {
		case s.DSN == "" && s.DSNFile == "":
			v.fail("store.dsn", `required with driver = "postgres" (or dsn_file)`)
		case s.DSN != "" && s.DSNFile != "":
			v.fail("store.dsn_file", "give dsn or dsn_file, not both")
		case s.DSNFile != "" && !path.IsAbs(s.DSNFile):
			v.fail("store.dsn_file", "%q is not an absolute path", s.DSNFile)
		}
		if s.Path != "" {
			v.fail("store.path", `applies to driver = "sqlite" only`)
		}
	}
	if s.FlushInterval.Duration() < minFlushInterval {
		v.fail("store.flush_interval", "%s is too short: at least %v", s.FlushInterval, minFlushInterval)
	}
	if s.FlushRows < 1 {
		v.fail("store.flush_rows", "must be at least 1, not %d", s.FlushRows)
	}
	if s.QueueSize < s.FlushRows {
		v.fail("store.queue_size", "%d is less than store.flush_rows (%d)", s.QueueSize, s.FlushRows)
	}
}

func (v *validator) reports(r *Reports, s *Store) {
	if r.Enabled {
		if strings.TrimSpace(r.OrgName) == "" {
			v.fail("reports.org_name", "required when reports.enabled: it names the reporter in every report")
		}
		if r.FromAddress == "" {
			v.fail("reports.from_address", "required when reports.enabled: reports are sent from it")
		}
	}
	for _, f := range []struct{ key, val string }{
		{"reports.org_name", r.OrgName}, {"reports.from_name", r.FromName}, {"reports.contact_info", r.ContactInfo},
	} {
		if strings.IndexFunc(f.val, func(c rune) bool { return c < ' ' || c == 0x7f }) >= 0 {
			v.fail(f.key, "must be one line without control characters")
		}
	}
	if r.FromAddress != "" {
		v.mailbox("reports.from_address", &r.FromAddress)
	}
	if r.ContactEmail != "" {
		v.mailbox("reports.contact_email", &r.ContactEmail)
	}
	if r.Submitter != "" {
		if n, err := dmarc.NormalizeDomain(r.Submitter); err != nil {
			v.failErr("reports.submitter", err)
		} else {
			r.Submitter = n
		}
	}
	for _, c := range []struct {
		key string
		val Cadence
	}{{"reports.interval_floor", r.IntervalFloor}, {"reports.interval_ceiling", r.IntervalCeiling}} {
		if !cadences.valid(uint8(c.val)) {
			v.fail(c.key, "invalid report interval %d", c.val)
		}
	}
	switch {
	case r.IntervalCeiling == IntervalNever:
		v.fail("reports.interval_ceiling", `"never" is a floor only: set interval_floor = "never" to send no reports`)
	case r.IntervalFloor != IntervalNever && r.IntervalFloor > r.IntervalCeiling:
		v.fail("reports.interval_floor", "%s is longer than reports.interval_ceiling (%s)", r.IntervalFloor, r.IntervalCeiling)
	}
	if r.CloseDelay.Duration() <= s.FlushInterval.Duration() {
		v.fail("reports.close_delay", "%s must exceed store.flush_interval (%s): the rows still queued must reach the store before a period is reported", r.CloseDelay, s.FlushInterval)
	}
	v.positive("reports.max_backlog", r.MaxBacklog)
	if !reportFormats.valid(uint8(r.Format)) {
		v.fail("reports.format", "invalid report format %d", r.Format)
	}
	if r.MaxSize < 10*KiB {
		v.fail("reports.max_size", "%s is too small: at least 10KiB", r.MaxSize)
	}
	if r.Spread < 0 {
		v.fail("reports.spread", "must not be negative")
	}
	if r.Concurrency < 1 || r.Concurrency > 100 {
		v.fail("reports.concurrency", "must be 1 to 100, not %d", r.Concurrency)
	}
	if v.positive("reports.retry_backoff", r.RetryBackoff) && r.RetryBackoffMax < r.RetryBackoff {
		v.fail("reports.retry_backoff_max", "%s is shorter than reports.retry_backoff (%s)", r.RetryBackoffMax, r.RetryBackoff)
	}
	v.positive("reports.retry_max_age", r.RetryMaxAge)
	if r.SuppressAfter < 0 {
		v.fail("reports.suppress_after", "must not be negative (0 never suppresses)")
	}
	if r.ExpireAfter < 0 {
		v.fail("reports.expire_after", "must not be negative (0 keeps data for ever)")
	} else if r.ExpireAfter > 0 && r.ExpireAfter <= r.MaxBacklog {
		v.fail("reports.expire_after", "%s must exceed reports.max_backlog (%s), or data would expire before it is reported", r.ExpireAfter, r.MaxBacklog)
	}
	for i, p := range r.Suppress {
		n, err := normalizeDestinationPattern(p)
		if err != nil {
			v.failErr(indexKey("reports.suppress", i), err)
			continue
		}
		r.Suppress[i] = n
	}
	v.relay(&r.Relay)
	v.reportDKIM(&r.DKIM, r.FromAddress)
	for i, d := range r.Destinations {
		p := indexKey("reports.destination", i)
		if d.Match == "" {
			v.fail(joinKey(p, "match"), "required")
		} else if n, err := normalizeDestinationPattern(d.Match); err != nil {
			v.failErr(joinKey(p, "match"), err)
		} else {
			r.Destinations[i].Match = n
		}
		if !reportFormats.valid(uint8(d.Format)) {
			v.fail(joinKey(p, "format"), "invalid report format %d", d.Format)
		}
	}
}

// normalizeDestinationPattern checks an address or domain that names
// report destinations and returns it in canonical form: lower case, the
// domain normalized.
func normalizeDestinationPattern(s string) (string, error) {
	if strings.Contains(s, "@") {
		if err := checkMailbox(s); err != nil {
			return "", err
		}
		return strings.ToLower(normalizeMailbox(s)), nil
	}
	n, err := dmarc.NormalizeDomain(strings.TrimPrefix(s, "*."))
	if err != nil {
		return "", fmt.Errorf("%q is neither an address nor a domain: %w", s, err)
	}
	return n, nil
}

func (v *validator) relay(r *Relay) {
	host, port, err := net.SplitHostPort(r.Address)
	if err != nil {
		host, port = r.Address, ""
	}
	switch {
	case strings.TrimSpace(host) == "":
		v.fail("reports.relay.address", "%q: want host:port, such as \"localhost:25\"", r.Address)
	case strings.ContainsAny(host, " \t/@"):
		v.fail("reports.relay.address", "%q is not a host name or address", r.Address)
	case port != "":
		if _, err := parsePort(port); err != nil {
			v.failErr("reports.relay.address", fmt.Errorf("%q: %w", r.Address, err))
		}
	}
	if !startTLSModes.valid(uint8(r.StartTLS)) {
		v.fail("reports.relay.starttls", "invalid starttls mode %d", r.StartTLS)
	}
	switch {
	case r.Password != "" && r.PasswordFile != "":
		v.fail("reports.relay.password_file", "give password or password_file, not both")
	case (r.Password != "" || r.PasswordFile != "") && r.Username == "":
		v.fail("reports.relay.username", "required with a password")
	case r.PasswordFile != "" && !path.IsAbs(r.PasswordFile):
		v.fail("reports.relay.password_file", "%q is not an absolute path", r.PasswordFile)
	}
	if r.HeloName != "" {
		if _, err := dmarc.NormalizeDomain(r.HeloName); err != nil {
			v.failErr("reports.relay.helo_name", err)
		}
	}
	v.positive("reports.relay.timeout", r.Timeout)
}

func (v *validator) reportDKIM(d *ReportDKIM, from string) {
	if d.Domain == "" && d.Selector == "" && d.Key == "" && d.Ed25519Selector == "" && d.Ed25519Key == "" {
		return
	}
	if d.Domain == "" {
		v.fail("reports.dkim.domain", "required to sign")
	} else if n, err := dmarc.NormalizeDomain(d.Domain); err != nil {
		v.failErr("reports.dkim.domain", err)
	} else {
		d.Domain = n
		if i := strings.LastIndexByte(from, '@'); i >= 0 && !aligned(from[i+1:], n) {
			v.fail("reports.dkim.domain", "%s does not align with the domain of reports.from_address (%s): report mail would fail DMARC", n, from[i+1:])
		}
	}
	for _, k := range []struct {
		sel, key       string
		selKey, keyKey string
	}{
		{d.Selector, d.Key, "reports.dkim.selector", "reports.dkim.key"},
		{d.Ed25519Selector, d.Ed25519Key, "reports.dkim.ed25519_selector", "reports.dkim.ed25519_key"},
	} {
		switch {
		case k.sel == "" && k.key == "":
			continue
		case k.sel == "":
			v.fail(k.selKey, "required with %s", k.keyKey)
		case k.key == "":
			v.fail(k.keyKey, "required with %s", k.selKey)
		case !path.IsAbs(k.key):
			v.fail(k.keyKey, "%q is not an absolute path", k.key)
		}
		if k.sel != "" {
			if _, err := dmarc.NormalizeDomain(k.sel + ".x"); err != nil || strings.Contains(k.sel, "_") {
				v.fail(k.selKey, "%q is not a selector (letters, digits, hyphens and dots)", k.sel)
			}
		}
	}
	if d.Key == "" && d.Ed25519Key == "" && d.Selector == "" && d.Ed25519Selector == "" {
		v.fail("reports.dkim.key", "required to sign (or ed25519_key)")
	}
}

// aligned reports whether two domains share an organizational domain
// under the public suffix list: relaxed DMARC alignment as most receivers
// compute it.
func aligned(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	oa, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	ob, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && oa == ob
}
