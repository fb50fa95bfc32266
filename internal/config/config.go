// Package config reads, checks and writes dmarcd.toml, the configuration of
// dmarcd.
//
// Parse and Load decode strictly: an unknown key, a value of the wrong
// type or a value that does not parse stops start-up with the file, the
// line and the key:
//
//	dmarcd.toml:12: unknown key "milter.max_conection" (did you mean "max_connections"?)
//	dmarcd.toml:20: listener[1].address: invalid socket "inet:99999": port 99999 out of range 1-65535
//
// Validate checks a Config however it was built (decoded from TOML or
// converted from opendmarc.conf) and puts its domain lists in canonical
// form; WriteTOML writes a Config back as a commented dmarcd.toml that
// Parse reads to the same Config.
//
// BurntSushi/toml reports lines for syntax errors only, so this package
// finds the line of every other problem itself: it scans the file for the
// key paths it defines (see indexLines for what the scanner follows).
package config

import (
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
)

// DefaultPath is where dmarcd looks for its configuration.
const DefaultPath = "/etc/dmarcd/dmarcd.toml"

// Config is the whole configuration: the top-level keys of dmarcd.toml and
// its tables.
type Config struct {
	// Spec is the DMARC specification to follow: RFC 9989 (the standard
	// since 2026) or RFC 7489 (what OpenDMARC 1.4 implements).
	Spec dmarc.Spec `toml:"spec"`

	// AuthservID is the authserv-id of the Authentication-Results header
	// fields dmarcd adds, and of those it trusts and removes when forged.
	// "" uses the MTA's name (the {j} milter macro), or the host name when
	// the MTA does not send it; "HOSTNAME" always uses os.Hostname().
	AuthservID string `toml:"authserv_id"`

	// AuthservIDWithJobID writes "<authserv-id>/<queue-id>" as the
	// authserv-id of our Authentication-Results, as OpenDMARC's
	// AuthservIDWithJobID does.
	AuthservIDWithJobID bool `toml:"authserv_id_with_job_id"`

	// TrustedAuthservIDs are the authserv-ids whose Authentication-Results
	// (SPF and DKIM results from the MTA or other filters) are read. Empty
	// trusts AuthservID alone, as OpenDMARC does; a list trusts AuthservID
	// only if it is listed. "HOSTNAME" stands for os.Hostname(). Matching
	// ignores case.
	TrustedAuthservIDs []string `toml:"trusted_authserv_ids"`

	// StateDir holds dmarcd's data: the report database and its queue.
	StateDir string `toml:"state_dir"`

	// PIDFile, if set, is written with the process ID at start-up.
	PIDFile string `toml:"pid_file"`

	// User, if set, is the user dmarcd runs as once its sockets are open:
	// "name" (with that user's groups) or "name:group"; names or numeric
	// ids. Unix sockets without a socket_owner or socket_group are given
	// to this user and group, as OpenDMARC's belong to its UserID.
	User string `toml:"user"`

	// Umask, if set, is the process's file mode creation mask, for the
	// PID and history files.
	Umask Umask `toml:"umask"`

	// PublicSuffixList, if set, is the public suffix list file that spec
	// rfc7489 uses to find organizational domains; "" uses the list built
	// into dmarcd. RFC 9989 needs none.
	PublicSuffixList string `toml:"public_suffix_list"`

	// HistoryFile, if set, is a file to which a record of every evaluated
	// message is appended in OpenDMARC's history format, for
	// opendmarc-import and the report tools built on it.
	HistoryFile string `toml:"history_file"`

	// RecordAllMessages also writes history records for messages whose
	// From domain has no DMARC record.
	RecordAllMessages bool `toml:"record_all_messages"`

	// SoftwareHeader adds a "DMARC-Filter: dmarcd <version> <host>" header
	// field to the messages dmarcd evaluates, as OpenDMARC's SoftwareHeader.
	SoftwareHeader bool `toml:"software_header"`

	// CopyFailuresTo, if set, is an address added as a recipient of the
	// messages that fail DMARC under p=quarantine or p=reject.
	CopyFailuresTo string `toml:"copy_failures_to"`

	// HeapTarget is how large the Go heap may grow before it is
	// collected while the data it holds is under half of it
	// (internal/heapgoal): memory spent to save CPU. 0 leaves Go's
	// default, a collection whenever the heap has doubled, as does a
	// GOGC environment variable.
	HeapTarget Size `toml:"heap_target"`

	// Listeners are the milter sockets to serve; at least one.
	Listeners []Listener `toml:"listener"`

	// Milter tunes the milter protocol server.
	Milter Milter `toml:"milter"`

	// Policy says what DMARC outcomes do to messages.
	Policy Policy `toml:"policy"`

	// Ignore lists the mail that is passed through without evaluation.
	Ignore Ignore `toml:"ignore"`

	// SPF says where SPF results come from.
	SPF SPF `toml:"spf"`

	// DKIM says where DKIM results come from.
	DKIM DKIM `toml:"dkim"`

	// ARC configures the ARC override of DMARC failures.
	ARC ARC `toml:"arc"`

	// Overrides replace the published policy of some domains.
	Overrides []Override `toml:"override"`

	// DNS configures the resolver and its cache.
	DNS DNS `toml:"dns"`

	// Log configures logging.
	Log Log `toml:"log"`

	// Store says where aggregate report data is kept.
	Store Store `toml:"store"`

	// Reports configures the aggregate reports dmarcd sends.
	Reports Reports `toml:"reports"`

	// FailureReports configures the failure reports dmarcd sends.
	FailureReports FailureReports `toml:"failure_reports"`

	// Received configures what is done with the DMARC reports other
	// receivers send about our users' domains.
	Received Received `toml:"received"`

	// HTTP configures the dashboard, metrics and health listener.
	HTTP HTTP `toml:"http"`
}

// Listener is one milter socket, a [[listener]] table.
type Listener struct {
	// Address is the socket to listen on (see Socket for the forms).
	Address Socket `toml:"address"`

	// Mode is what the listener does with messages: enforce (strict),
	// evaluate without enforcing (relaxed), or pass everything (disable).
	Mode ListenerMode `toml:"mode"`

	// SocketOwner is the user name or uid to give a Unix socket; "" keeps
	// dmarcd's. Unix sockets only.
	SocketOwner string `toml:"socket_owner"`

	// SocketGroup is the group name or gid to give a Unix socket, so that
	// the MTA can connect; "" keeps dmarcd's. Unix sockets only.
	SocketGroup string `toml:"socket_group"`

	// SocketMode is the permission mode of a Unix socket; ignored for TCP.
	SocketMode FileMode `toml:"socket_mode"`
}

// Milter tunes the milter protocol server, the [milter] table.
type Milter struct {
	// MaxConnections caps the MTA connections served at once; more wait
	// to be accepted.
	MaxConnections int `toml:"max_connections"`

	// IdleTimeout is how long to wait for the MTA's next milter command.
	// It must exceed Postfix's smtpd_timeout (300s), since Postfix keeps
	// the milter waiting while the SMTP client is slow.
	IdleTimeout Duration `toml:"idle_timeout"`

	// WriteTimeout bounds each write of a reply to the MTA.
	WriteTimeout Duration `toml:"write_timeout"`

	// DNSBudget bounds the DNS work for one message; when it runs out the
	// result is temperror. It must stay well under Postfix's
	// milter_content_timeout (300s); at most 60s.
	DNSBudget Duration `toml:"dns_budget"`

	// ShutdownTimeout is how long SIGTERM waits for sessions in flight
	// before closing them.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
}

// Policy says what DMARC outcomes do to messages, the [policy] table.
// Listeners in relaxed mode never reject, tempfail or quarantine.
type Policy struct {
	// Reject is what a DMARC failure under p=reject does.
	Reject RejectAction `toml:"reject"`

	// Quarantine is what a DMARC failure under p=quarantine does.
	Quarantine QuarantineAction `toml:"quarantine"`

	// TempError is what a temporary DNS failure during evaluation does.
	TempError TempErrorAction `toml:"temperror"`

	// PermError is what a malformed DMARC record does.
	PermError PermErrorAction `toml:"permerror"`

	// MultipleFrom is what a From field with several addresses does.
	MultipleFrom MultipleFromAction `toml:"multiple_from"`

	// MissingFrom is what a message without a usable From domain does.
	MissingFrom MissingFromAction `toml:"missing_from"`

	// MissingDKIMResult is what a message with a DKIM-Signature but no
	// trusted dkim= result does.
	MissingDKIMResult MissingDKIMAction `toml:"missing_dkim_result"`

	// RejectReply is the SMTP reply to a rejected message: a 5xx code, a
	// 5.x.y enhanced status code and text, in which {domain} stands for
	// the From domain. See ExpandReply.
	RejectReply string `toml:"reject_reply"`

	// TempFailReply is the SMTP reply to a temporarily failed message: a
	// 4xx code, a 4.x.y enhanced status code and text with {domain}.
	TempFailReply string `toml:"tempfail_reply"`

	// AddHeader adds an Authentication-Results header field with the
	// DMARC result.
	AddHeader bool `toml:"add_header"`

	// RemoveForgedHeaders deletes Authentication-Results header fields
	// that carry our authserv-id but came from outside.
	RemoveForgedHeaders bool `toml:"remove_forged_headers"`

	// RequiredHeaders rejects messages that break the header field counts
	// of RFC 5322 §3.6: exactly one From and one Date; at most one Sender,
	// Reply-To, To, Cc, Bcc, Message-ID, In-Reply-To, References and
	// Subject.
	RequiredHeaders bool `toml:"required_headers"`
}

// SPF says where SPF results come from, the [spf] table.
type SPF struct {
	// UseUpstream reads the spf= results of trusted
	// Authentication-Results header fields.
	UseUpstream bool `toml:"use_upstream"`

	// SelfCheck checks SPF for the envelope (RFC 7208) when no usable
	// upstream result arrived, or always when UseUpstream is false.
	SelfCheck bool `toml:"self_check"`
}

// DKIM says where DKIM results come from, the [dkim] table.
type DKIM struct {
	// SelfVerify verifies the DKIM signatures of messages itself, rather
	// than reading dkim= results from trusted Authentication-Results. The
	// milter then asks the MTA for message bodies.
	SelfVerify bool `toml:"self_verify"`

	// MaxMessageSize bounds the messages dmarcd keeps in memory to verify
	// DKIM signatures and ARC seals; larger ones get no result of dmarcd's
	// own and are evaluated with the upstream results alone.
	MaxMessageSize Size `toml:"max_message_size"`
}

// ARC configures the ARC override of DMARC failures (RFC 8617 §7.2.1), the
// [arc] table.
type ARC struct {
	// TrustedSealers are ARC sealer domains (the d= of ARC-Seal). When a
	// message fails DMARC, its ARC chain validates, the newest sealer is
	// listed and a listed sealer's ARC-Authentication-Results show an SPF
	// or DKIM pass aligned with the From domain, the failure is overridden
	// with reason trusted_forwarder. Empty disables the override. Validate
	// normalizes the entries.
	TrustedSealers []string `toml:"trusted_sealers"`
}

// Ignore lists the mail dmarcd passes without evaluation, the [ignore]
// table. Ignored mail gets no header and no report row.
type Ignore struct {
	// Hosts are SMTP client addresses (single IPs or CIDRs) to ignore.
	Hosts []netip.Prefix `toml:"hosts"`

	// Authenticated ignores SMTP-authenticated clients (the {auth_authen}
	// macro is set): they are our own users sending.
	Authenticated bool `toml:"authenticated"`

	// FromDomains ignores messages whose From (RFC 5322) domain matches:
	// "example.com" matches that domain only, "*.example.com" its
	// subdomains only. Validate normalizes the entries (A-labels, lower
	// case); see MatchDomain.
	FromDomains []string `toml:"from_domains"`

	// MailFromDomains ignores messages whose envelope sender (MAIL FROM)
	// domain matches, as FromDomains.
	MailFromDomains []string `toml:"mail_from_domains"`

	// Recipients ignores messages all of whose recipients are listed:
	// addresses ("dmarc-reports@example.com") or whole domains
	// ("@example.com"). Compared without regard to case.
	Recipients []string `toml:"recipients"`
}

// Override replaces the published policy of a domain, an [[override]]
// table. Evaluation records it as the override reason local_policy.
type Override struct {
	// Domain is the From domain the override applies to: "example.com"
	// exactly, or "*.example.com" for its subdomains.
	Domain string `toml:"domain"`

	// Policy replaces the published policy when messages from Domain
	// fail DMARC.
	Policy dmarc.Policy `toml:"policy"`

	// Comment says why, for the logs and the report's override comment.
	Comment string `toml:"comment"`
}

// DNS configures the resolver and its cache, the [dns] table.
type DNS struct {
	// Nameservers are the recursive resolvers to ask: IP addresses with an
	// optional port ("192.0.2.53", "192.0.2.53:5353", "2001:db8::53",
	// "[2001:db8::53]:5353"). Empty means the nameservers of
	// /etc/resolv.conf.
	Nameservers []string `toml:"nameservers"`

	// Timeout bounds one query to one nameserver.
	Timeout Duration `toml:"timeout"`

	// Attempts is how often each nameserver is tried before a lookup
	// fails with temperror.
	Attempts int `toml:"attempts"`

	// CacheSize caps the cached answers; the least recently used are
	// dropped first. At least 1.
	CacheSize int `toml:"cache_size"`

	// MinTTL raises shorter TTLs, to shield the resolver from records
	// published with TTL 0.
	MinTTL Duration `toml:"min_ttl"`

	// MaxTTL lowers longer TTLs of answers, so that a changed record is
	// seen within this time.
	MaxTTL Duration `toml:"max_ttl"`

	// NegativeMaxTTL lowers longer TTLs of negative answers (NXDOMAIN,
	// NODATA), so that a newly published record is seen soon.
	NegativeMaxTTL Duration `toml:"negative_max_ttl"`
}

// Log configures logging, the [log] table.
type Log struct {
	// Level is the least severe level written: debug, info, warn or error.
	Level slog.Level `toml:"level"`

	// Format is the shape of the lines: text or json.
	Format LogFormat `toml:"format"`

	// Syslog also sends the log to the local syslog daemon.
	Syslog bool `toml:"syslog"`

	// SyslogFacility is the syslog facility, one of SyslogFacilities.
	SyslogFacility string `toml:"syslog_facility"`
}

// setDefaults fills a [[listener]] table's defaults before decoding it:
// those of DefaultListener but the address, which each table must give.
func (l *Listener) setDefaults() {
	*l = DefaultListener()
	l.Address = Socket{}
}

// DefaultListener returns a listener on inet:8893@127.0.0.1 in strict mode
// with socket mode 0660, the one Default has. Keys a [[listener]] table
// leaves out take these values, except that its address is required.
func DefaultListener() Listener {
	return Listener{
		Address:    MustParseSocket("inet:8893@127.0.0.1"),
		Mode:       ModeStrict,
		SocketMode: 0o660,
	}
}

// Default returns the configuration dmarcd runs with when dmarcd.toml sets
// nothing. Each call returns a new Config.
func Default() *Config {
	return &Config{
		Spec:       dmarc.RFC9989,
		StateDir:   "/var/lib/dmarcd",
		Listeners:  []Listener{DefaultListener()},
		HeapTarget: 48 * MiB,
		Milter: Milter{
			MaxConnections:  1024,
			IdleTimeout:     Duration(10 * time.Minute),
			WriteTimeout:    Duration(30 * time.Second),
			DNSBudget:       Duration(10 * time.Second),
			ShutdownTimeout: Duration(30 * time.Second),
		},
		Policy: Policy{
			Reject:              RejectActionReject,
			Quarantine:          QuarantineHold,
			TempError:           TempErrorAccept,
			PermError:           PermErrorAccept,
			MultipleFrom:        MultipleFromStrictest,
			MissingFrom:         MissingFromReject,
			MissingDKIMResult:   MissingDKIMFail,
			RejectReply:         "550 5.7.1 rejected by DMARC policy for {domain}",
			TempFailReply:       "451 4.7.1 DMARC policy for {domain} could not be evaluated, try again later",
			AddHeader:           true,
			RemoveForgedHeaders: true,
		},
		SPF:  SPF{UseUpstream: true, SelfCheck: true},
		DKIM: DKIM{MaxMessageSize: 32 * MiB},
		Ignore: Ignore{
			Hosts: []netip.Prefix{
				netip.MustParsePrefix("127.0.0.1/32"),
				netip.MustParsePrefix("::1/128"),
			},
			Authenticated: true,
		},
		DNS: DNS{
			Timeout:        Duration(2 * time.Second),
			Attempts:       2,
			CacheSize:      100000,
			MinTTL:         0,
			MaxTTL:         Duration(24 * time.Hour),
			NegativeMaxTTL: Duration(time.Hour),
		},
		Log:            Log{Level: slog.LevelInfo, Format: LogText, SyslogFacility: "mail"},
		Store:          defaultStore(),
		Reports:        defaultReports(),
		FailureReports: DefaultFailureReports(),
		Received:       DefaultReceived(),
		HTTP:           DefaultHTTP(),
	}
}

// Load reads and parses the file at path; see Parse. Errors name the file
// by path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}
