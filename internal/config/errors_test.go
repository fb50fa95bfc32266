package config

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// errorCase is a dmarcd.toml with exactly one problem.
type errorCase struct {
	name string
	toml string
	line int    // where the problem is
	key  string // the key path reported
	msg  string // a substring of the message
}

// The documents below start with a newline for legibility; it is cut off,
// so that line 1 is the first line shown.
var errorCases = []errorCase{
	// Unknown keys.
	{
		name: "an unknown top-level key is reported at its line with a suggestion",
		toml: `
spec = "rfc9989"
authserv_idd = "mx.example.com"
`,
		line: 2, key: "authserv_idd", msg: `unknown key "authserv_idd" (did you mean "authserv_id"?)`,
	},
	{
		name: "a misspelt key in a table gives the dotted key and a suggestion",
		toml: `
# comment
[milter]
max_connections = 10
max_conection = 10
`,
		line: 4, key: "milter.max_conection", msg: `unknown key "milter.max_conection" (did you mean "max_connections"?)`,
	},
	{
		name: "a key put in the wrong table points to the table it belongs in",
		toml: `
[dns]
dns_budget = "5s"
`,
		line: 2, key: "dns.dns_budget", msg: `(did you mean "dns_budget" in [milter]?)`,
	},
	{
		name: "an opendmarc.conf key name suggests its dmarcd.toml spelling",
		toml: `
AuthservID = "mx.example.com"
`,
		line: 1, key: "AuthservID", msg: `(did you mean "authserv_id"?)`,
	},
	{
		name: "keys are case-sensitive",
		toml: `
Spec = "rfc7489"
`,
		line: 1, key: "Spec", msg: `(did you mean "spec"?)`,
	},
	{
		name: "an unknown table is reported once, at its header",
		toml: `
[milter]
max_connections = 5

[miltre]
max_connections = 5
idle_timeout = "10m"
`,
		line: 4, key: "miltre", msg: `unknown key "miltre" (did you mean "milter"?)`,
	},
	{
		name: "an unknown key in the second listener names that listener",
		toml: `
[[listener]]
address = "inet:8893@127.0.0.1"

[[listener]]
address = "unix:/run/dmarcd/dmarcd.sock"
socket_groop = "postfix"
`,
		line: 6, key: "listener[1].socket_groop", msg: `(did you mean "socket_group"?)`,
	},
	{
		name: "an unknown key inside an inline table is found on its line",
		toml: `
spec = "rfc9989"
milter = { max_connections = 5,
           idel_timeout = "10m" }
`,
		line: 3, key: "milter.idel_timeout", msg: `(did you mean "idle_timeout"?)`,
	},
	{
		name: "an unknown dotted key is found on its line",
		toml: `
milter.write_timeout = "5s"
milter.dns_budgit = "5s"
`,
		line: 2, key: "milter.dns_budgit", msg: `(did you mean "dns_budget"?)`,
	},
	{
		name: "a key with no near miss gets no suggestion",
		toml: `
[log]
colour = true
`,
		line: 2, key: "log.colour", msg: `unknown key "log.colour"`,
	},
	{
		name: "a quoted unknown key is quoted in the path",
		toml: `
[policy]
"reject reply" = "550 5.7.1 no"
`,
		line: 2, key: `policy."reject reply"`, msg: `unknown key 'policy."reject reply"' (did you mean "reject_reply"?)`,
	},

	// Wrong types.
	{
		name: "an integer where a duration belongs says what a duration looks like",
		toml: `
[milter]
idle_timeout = 600
`,
		line: 2, key: "milter.idle_timeout", msg: `expected a duration string such as "10s", "5m" or "1h", got integer 600`,
	},
	{
		name: "a string where an integer belongs",
		toml: `
[milter]
max_connections = "1024"
`,
		line: 2, key: "milter.max_connections", msg: `expected an integer, got string "1024"`,
	},
	{
		name: "a float where an integer belongs",
		toml: `
[dns]
attempts = 2.5
`,
		line: 2, key: "dns.attempts", msg: `expected an integer, got float 2.5`,
	},
	{
		name: "a string where a boolean belongs",
		toml: `
[policy]
add_header = "yes"
`,
		line: 2, key: "policy.add_header", msg: `expected true or false, got string "yes"`,
	},
	{
		name: "a string where a list belongs",
		toml: `
[ignore]
hosts = "127.0.0.1"
`,
		line: 2, key: "ignore.hosts", msg: `expected an array, got string "127.0.0.1"`,
	},
	{
		name: "a table where an array of tables belongs",
		toml: `
[listener]
address = "inet:8893@127.0.0.1"
`,
		line: 1, key: "listener", msg: `expected an array of tables ([[listener]]), got a table`,
	},
	{
		name: "an array of tables where a table belongs",
		toml: `
[[milter]]
max_connections = 1
`,
		line: 1, key: "milter", msg: `expected a table ([milter]), got an array of tables`,
	},
	{
		name: "a wrong type in a multi-line array is reported at the element's line",
		toml: `
[ignore]
hosts = [
  "127.0.0.1",  # localhost
  42,
]
`,
		line: 4, key: "ignore.hosts[1]", msg: `got integer 42`,
	},
	{
		name: "a date where a string belongs",
		toml: `
state_dir = 2024-01-01
`,
		line: 1, key: "state_dir", msg: `expected a string, got a date-time`,
	},
	{
		name: "a number where a socket belongs",
		toml: `
[[listener]]
address = 8893
`,
		line: 2, key: "listener[0].address", msg: `expected a socket string such as "inet:8893@127.0.0.1"`,
	},
	{
		name: "an integer where an octal mode string belongs",
		toml: `
[[listener]]
address = "/run/dmarcd.sock"
socket_mode = 0o660
`,
		line: 3, key: "listener[0].socket_mode", msg: `expected an octal string such as "0660", got integer 432`,
	},

	// Values that do not parse.
	{
		name: "a duration without a unit",
		toml: `
[dns]
timeout = "300"
`,
		line: 2, key: "dns.timeout", msg: `invalid duration "300": want a number and a unit`,
	},
	{
		name: "a duration in words",
		toml: `
[dns]
timeout = "2 seconds"
`,
		line: 2, key: "dns.timeout", msg: `invalid duration "2 seconds"`,
	},
	{
		name: "a CIDR with a prefix length out of range, in a multi-line array",
		toml: `
[ignore]
hosts = [
  "127.0.0.1",
  "::1",
  "10.0.0.0/33",
]
`,
		line: 5, key: "ignore.hosts[2]", msg: `"10.0.0.0/33" is not an IP address or CIDR`,
	},
	{
		name: "a CIDR with host bits set suggests the network",
		toml: `
[ignore]
hosts = ["10.1.2.3/8"]
`,
		line: 2, key: "ignore.hosts[0]", msg: `"10.1.2.3/8" has host bits set (did you mean "10.0.0.0/8"?)`,
	},
	{
		name: "a host name among the ignored hosts",
		toml: `
[ignore]
hosts = ["127.0.0.1", "localhost"]
`,
		line: 2, key: "ignore.hosts[1]", msg: `"localhost" is not an IP address or CIDR`,
	},
	{
		name: "a port out of range",
		toml: `
[[listener]]
address = "inet:99999@127.0.0.1"
`,
		line: 2, key: "listener[0].address", msg: `invalid socket "inet:99999@127.0.0.1": port 99999 out of range 1-65535`,
	},
	{
		name: "an unknown socket type suggests the right one",
		toml: `
[[listener]]
address = "inet4:8893"
`,
		line: 2, key: "listener[0].address", msg: `unknown socket type "inet4"`,
	},
	{
		name: "a relative unix socket path",
		toml: `
[[listener]]
address = "unix:run/dmarcd.sock"
`,
		line: 2, key: "listener[0].address", msg: `must be absolute`,
	},
	{
		name: "an IPv6 address under inet",
		toml: `
[[listener]]
address = "inet:8893@[::1]"
`,
		line: 2, key: "listener[0].address", msg: `use inet6:8893@[::1]`,
	},
	{
		name: "an unknown listener mode suggests the right word",
		toml: `
[[listener]]
address = "inet:8893@127.0.0.1"
mode = "strickt"
`,
		line: 3, key: "listener[0].mode", msg: `unknown listener mode "strickt" (want "strict", "relaxed" or "disable") (did you mean "strict"?)`,
	},
	{
		name: "an unknown policy action",
		toml: `
[policy]
reject = "bounce"
`,
		line: 2, key: "policy.reject", msg: `unknown reject action "bounce" (want "reject", "quarantine" or "accept")`,
	},
	{
		name: "an unknown spec",
		toml: `
spec = "rfc1234"
`,
		line: 1, key: "spec", msg: `unknown DMARC spec "rfc1234"`,
	},
	{
		name: "an unknown log level",
		toml: `
[log]
level = "verbose"
`,
		line: 2, key: "log.level", msg: `unknown log level "verbose"`,
	},
	{
		name: "an upper-case log level is not a log level",
		toml: `
[log]
level = "INFO"
`,
		line: 2, key: "log.level", msg: `(did you mean "info"?)`,
	},
	{
		name: "a misspelt override policy",
		toml: `
[[override]]
domain = "example.com"
policy = "quarantien"
`,
		line: 3, key: "override[0].policy", msg: `(did you mean "quarantine"?)`,
	},
	{
		name: "a socket mode that is not octal",
		toml: `
[[listener]]
address = "/run/dmarcd.sock"
socket_mode = "rw-rw----"
`,
		line: 3, key: "listener[0].socket_mode", msg: `invalid file mode "rw-rw----"`,
	},
	{
		name: "a socket mode with setuid bits",
		toml: `
[[listener]]
address = "/run/dmarcd.sock"
socket_mode = "4755"
`,
		line: 3, key: "listener[0].socket_mode", msg: `only permission bits`,
	},

	// Values Validate refuses.
	{
		name: "a DNS budget above 60s",
		toml: `
[milter]
dns_budget = "2m"
`,
		line: 2, key: "milter.dns_budget", msg: `2m is too long: at most 60s`,
	},
	{
		name: "a zero write timeout",
		toml: `
[milter]
write_timeout = "0s"
`,
		line: 2, key: "milter.write_timeout", msg: `must be positive, not 0s`,
	},
	{
		name: "a negative shutdown timeout",
		toml: `
[milter]
shutdown_timeout = "-5s"
`,
		line: 2, key: "milter.shutdown_timeout", msg: `must be positive, not -5s`,
	},
	{
		name: "an idle timeout no longer than Postfix's smtpd_timeout",
		toml: `
[milter]
idle_timeout = "5m"
`,
		line: 2, key: "milter.idle_timeout", msg: `must exceed Postfix's smtpd_timeout`,
	},
	{
		name: "no connections allowed",
		toml: `
[milter]
max_connections = 0
`,
		line: 2, key: "milter.max_connections", msg: `must be at least 1`,
	},
	{
		name: "a reject reply with a 4xx code",
		toml: `
[policy]
reject_reply = "450 4.7.1 try later"
`,
		line: 2, key: "policy.reject_reply", msg: `reply code 450 is not 5xx`,
	},
	{
		name: "an enhanced status code of the wrong class",
		toml: `
[policy]
reject_reply = "550 4.7.1 rejected"
`,
		line: 2, key: "policy.reject_reply", msg: `enhanced status code 4.7.1 does not match reply code 550`,
	},
	{
		name: "a reply without an enhanced status code",
		toml: `
[policy]
reject_reply = "550 rejected by DMARC policy for {domain}"
`,
		line: 2, key: "policy.reject_reply", msg: `no enhanced status code`,
	},
	{
		name: "a reply with codes and no text",
		toml: `
[policy]
reject_reply = "550 5.7.1"
`,
		line: 2, key: "policy.reject_reply", msg: `no text after the codes`,
	},
	{
		name: "a reply with an unknown placeholder",
		toml: `
[policy]
reject_reply = "550 5.7.1 rejected mail from {from}"
`,
		line: 2, key: "policy.reject_reply", msg: `unknown placeholder {from}`,
	},
	{
		name: "a reply with OpenDMARC's %s placeholder and a line break",
		toml: `
[policy]
reject_reply = "550 5.7.1 rejected\r\nfor %s"
`,
		line: 2, key: "policy.reject_reply", msg: `only printable ASCII`,
	},
	{
		name: "a tempfail reply with a 5xx code",
		toml: `
[policy]
tempfail_reply = "550 5.7.1 no"
`,
		line: 2, key: "policy.tempfail_reply", msg: `reply code 550 is not 4xx`,
	},
	{
		name: "the same listener address twice, spelt differently",
		toml: `
[[listener]]
address = "inet:8893@127.0.0.1"

[[listener]]
address = "tcp://127.0.0.1:8893"
`,
		line: 5, key: "listener[1].address", msg: `conflicts with listener[0].address inet:8893@127.0.0.1: the same socket`,
	},
	{
		name: "a listener on all interfaces and one on the same port",
		toml: `
[[listener]]
address = "inet:8893"
[[listener]]
address = "inet:8893@192.0.2.1"
`,
		line: 4, key: "listener[1].address", msg: `a wildcard address`,
	},
	{
		name: "a listener without an address is reported at its header",
		toml: `
[milter]
max_connections = 5

[[listener]]
mode = "relaxed"
`,
		line: 4, key: "listener[0].address", msg: `required`,
	},
	{
		name: "an empty listener list",
		toml: `
listener = []
`,
		line: 1, key: "listener", msg: `at least one [[listener]] is required`,
	},
	{
		name: "a socket owner on a TCP listener",
		toml: `
[[listener]]
address = "inet:8893@127.0.0.1"
socket_owner = "dmarcd"
`,
		line: 3, key: "listener[0].socket_owner", msg: `applies to unix sockets only`,
	},
	{
		name: "an invalid domain among the ignored From domains",
		toml: `
[ignore]
from_domains = ["example.com", "exa mple.com"]
`,
		line: 2, key: "ignore.from_domains[1]", msg: `invalid domain name`,
	},
	{
		name: "an invalid envelope domain on its own line",
		toml: `
[ignore]
mail_from_domains = [
  "example.com",
  "bad..example.com",
]
`,
		line: 4, key: "ignore.mail_from_domains[1]", msg: `invalid domain name`,
	},
	{
		name: "a recipient without an at sign suggests the @domain form",
		toml: `
[ignore]
recipients = ["example.com"]
`,
		line: 2, key: "ignore.recipients[0]", msg: `(did you mean "@example.com"?)`,
	},
	{
		name: "an authserv-id with a space",
		toml: `
authserv_id = "mx example"
`,
		line: 1, key: "authserv_id", msg: `one token`,
	},
	{
		name: "an authserv-id with a semicolon",
		toml: `
authserv_id = "mx.example.com;"
`,
		line: 1, key: "authserv_id", msg: `one token`,
	},
	{
		name: "an empty trusted authserv-id",
		toml: `
trusted_authserv_ids = ["mx1.example.com", ""]
`,
		line: 1, key: "trusted_authserv_ids[1]", msg: `must not be empty`,
	},
	{
		name: "the same override domain twice once normalized",
		toml: `
[[override]]
domain = "example.com"
policy = "none"

[[override]]
domain = "Example.COM."
policy = "reject"
`,
		line: 6, key: "override[1].domain", msg: `example.com already has override[0]`,
	},
	{
		name: "an override without a policy is reported at its header",
		toml: `
[[override]]
domain = "example.com"
`,
		line: 1, key: "override[0].policy", msg: `required`,
	},
	{
		name: "a nameserver given by name",
		toml: `
[dns]
nameservers = ["192.0.2.53", "dns.example.net"]
`,
		line: 2, key: "dns.nameservers[1]", msg: `a nameserver is an IP address`,
	},
	{
		name: "a nameserver port out of range",
		toml: `
[dns]
nameservers = ["[2001:db8::53]:70000"]
`,
		line: 2, key: "dns.nameservers[0]", msg: `out of range`,
	},
	{
		name: "a DNS timeout longer than the DNS budget",
		toml: `
[milter]
dns_budget = "5s"
[dns]
timeout = "6s"
`,
		line: 4, key: "dns.timeout", msg: `6s exceeds milter.dns_budget (5s)`,
	},
	{
		name: "no DNS attempts",
		toml: `
[dns]
attempts = 0
`,
		line: 2, key: "dns.attempts", msg: `must be at least 1`,
	},
	{
		name: "an empty DNS cache",
		toml: `
[dns]
cache_size = 0
`,
		line: 2, key: "dns.cache_size", msg: `must be from 1 to 100000000, not 0`,
	},
	{
		name: "a DNS cache too large to number its slots",
		toml: `
[dns]
cache_size = 3000000000
`,
		line: 2, key: "dns.cache_size", msg: `must be from 1 to 100000000, not 3000000000`,
	},
	{
		name: "a bad address in an inline array of listener tables",
		toml: `
listener = [
  { address = "inet:8893@127.0.0.1" },
  { address = "inet:8893@127.0.0.1", mode = "relaxed" },
]
`,
		line: 3, key: "listener[1].address", msg: `the same socket`,
	},
	{
		name: "a minimum TTL above the maximum",
		toml: `
[dns]
min_ttl = "2d"
`,
		line: 2, key: "dns.min_ttl", msg: `2d exceeds dns.max_ttl (24h)`,
	},
	{
		name: "a relative state directory",
		toml: `
state_dir = "var/lib/dmarcd"
`,
		line: 1, key: "state_dir", msg: `not an absolute path`,
	},

	{
		name: "a relative history file",
		toml: `
history_file = "history.dat"
`,
		line: 1, key: "history_file", msg: `not an absolute path`,
	},
	{
		name: "a relative public suffix list",
		toml: `
public_suffix_list = "public_suffix_list.dat"
`,
		line: 1, key: "public_suffix_list", msg: `not an absolute path`,
	},
	{
		name: "a user with two colons",
		toml: `
user = "dmarcd:postfix:mail"
`,
		line: 1, key: "user", msg: `want "user" or "user:group"`,
	},
	{
		name: "a user with an empty group",
		toml: `
user = "dmarcd:"
`,
		line: 1, key: "user", msg: `empty group`,
	},
	{
		name: "a umask that is not octal",
		toml: `
umask = "022x"
`,
		line: 1, key: "umask", msg: `invalid umask "022x"`,
	},
	{
		name: "a umask written as a number",
		toml: `
umask = 18
`,
		line: 1, key: "umask", msg: `expected an octal string such as "0027", or "", got integer 18`,
	},
	{
		name: "a copy address in angle brackets",
		toml: `
copy_failures_to = "<dmarc@example.com>"
`,
		line: 1, key: "copy_failures_to", msg: `write the bare address`,
	},
	{
		name: "a copy address without a domain",
		toml: `
copy_failures_to = "postmaster"
`,
		line: 1, key: "copy_failures_to", msg: `not an address`,
	},
	{
		name: "a heap target too small to hold the live data",
		toml: `
heap_target = "8MiB"
`,
		line: 1, key: "heap_target", msg: `8MiB is out of range: "0B" (Go's default) or 16MiB to 64GiB`,
	},
	{
		name: "a message size without a unit",
		toml: `
[dkim]
max_message_size = "32"
`,
		line: 2, key: "dkim.max_message_size", msg: `a unit is required`,
	},
	{
		name: "a message size with a lower-case unit suggests the right one",
		toml: `
[dkim]
max_message_size = "32mib"
`,
		line: 2, key: "dkim.max_message_size", msg: `(did you mean "MiB"?)`,
	},
	{
		name: "a message size written as a number",
		toml: `
[dkim]
max_message_size = 33554432
`,
		line: 2, key: "dkim.max_message_size", msg: `expected a size string such as "32MiB"`,
	},
	{
		name: "a message size of zero",
		toml: `
[dkim]
max_message_size = "0B"
`,
		line: 2, key: "dkim.max_message_size", msg: `must be positive`,
	},
	{
		name: "a message size above 1GiB",
		toml: `
[dkim]
max_message_size = "2GiB"
`,
		line: 2, key: "dkim.max_message_size", msg: `2GiB is too large: at most 1GiB`,
	},
	{
		name: "a wildcard among the trusted ARC sealers",
		toml: `
[arc]
trusted_sealers = ["google.com", "*.example.com"]
`,
		line: 2, key: "arc.trusted_sealers[1]", msg: `sealers are exact domains`,
	},
	{
		name: "an invalid domain among the trusted ARC sealers",
		toml: `
[arc]
trusted_sealers = [
  "google.com",
  "bad..example",
]
`,
		line: 4, key: "arc.trusted_sealers[1]", msg: `invalid domain name`,
	},
	{
		name: "an unknown syslog facility suggests the right one",
		toml: `
[log]
syslog = true
syslog_facility = "LOCAL0"
`,
		line: 3, key: "log.syslog_facility", msg: `(did you mean "local0"?)`,
	},
	{
		name: "SPF settings as strings",
		toml: `
[spf]
self_check = "no"
`,
		line: 2, key: "spf.self_check", msg: `expected true or false, got string "no"`,
	},
	{
		name: "an OpenDMARC key in the spf table suggests the dmarcd key",
		toml: `
[spf]
SPFSelfValidate = true
`,
		line: 2, key: "spf.SPFSelfValidate", msg: `unknown key "spf.SPFSelfValidate"`,
	},

	// TOML syntax.
	{
		name: "a syntax error has the parser's line",
		toml: `
[milter]
max_connections =
`,
		line: 2, key: "milter.max_connections", msg: `TOML syntax (column 18): expected value`,
	},
	{
		name: "a duplicate key is a syntax error at the second one",
		toml: `
[dns]
attempts = 2
attempts = 3
`,
		line: 3, key: "dns.attempts", msg: `has already been defined`,
	},
	{
		name: "a duration without quotes is a syntax error with a hint",
		toml: `
[milter]
idle_timeout = 10m
`,
		line: 2, key: "milter", msg: `(durations are strings: write "10m", with quotes)`,
	},
	{
		name: "an octal mode without quotes is a syntax error with a hint",
		toml: `
[[listener]]
address = "/run/x.sock"
socket_mode = 0660
`,
		line: 3, key: "listener.socket_mode", msg: `(modes are strings: write "0660", with quotes)`,
	},
	// [store] and [reports].
	{
		name: "PostgreSQL without a DSN",
		toml: `
[store]
driver = "postgres"
`,
		line: 1, key: "store.dsn", msg: `required with driver = "postgres"`,
	},
	{
		name: "a DSN with SQLite",
		toml: `
[store]
dsn = "postgres://x@db/dmarcd"
`,
		line: 2, key: "store.dsn", msg: `applies to driver = "postgres" only`,
	},
	{
		name: "an unknown store driver names the choices",
		toml: `
[store]
driver = "mysql"
`,
		line: 2, key: "store.driver", msg: `unknown store driver "mysql" (want "sqlite" or "postgres")`,
	},
	{
		name: "a queue smaller than a flush",
		toml: `
[store]
flush_rows = 5000
queue_size = 1000
`,
		line: 3, key: "store.queue_size", msg: `less than store.flush_rows`,
	},
	{
		name: "reports enabled without an organization name",
		toml: `
[reports]
enabled = true
from_address = "dmarc@example.com"
`,
		line: 1, key: "reports.org_name", msg: `required when reports.enabled`,
	},
	{
		name: "a floor above the ceiling",
		toml: `
[reports]
interval_floor = "weekly"
`,
		line: 2, key: "reports.interval_floor", msg: `weekly is longer than reports.interval_ceiling (daily)`,
	},
	{
		name: "never is a floor, not a ceiling",
		toml: `
[reports]
interval_ceiling = "never"
`,
		line: 2, key: "reports.interval_ceiling", msg: `"never" is a floor only`,
	},
	{
		name: "a close delay within the flush interval",
		toml: `
[store]
flush_interval = "10s"
[reports]
close_delay = "5s"
`,
		line: 4, key: "reports.close_delay", msg: `must exceed store.flush_interval`,
	},
	{
		name: "a rate without a window",
		toml: `
[reports]
rate_global = "100"
`,
		line: 2, key: "reports.rate_global", msg: `invalid rate "100": want a count and a duration such as "100/1h"`,
	},
	{
		name: "a rate written as a number is a type error",
		toml: `
[reports]
rate_per_destination = 10
`,
		line: 2, key: "reports.rate_per_destination", msg: `expected a rate string such as "100/1h"`,
	},
	{
		name: "data expiring before it may be reported",
		toml: `
[reports]
expire_after = "2d"
`,
		line: 2, key: "reports.expire_after", msg: `must exceed reports.max_backlog (5d)`,
	},
	{
		name: "a suppression that is neither address nor domain",
		toml: `
[reports]
suppress = ["example.com", "@example.com"]
`,
		line: 2, key: "reports.suppress[1]", msg: `is not an address`,
	},
	{
		name: "a DKIM domain that does not align with the From address",
		toml: `
[reports]
from_address = "dmarc@example.com"
[reports.dkim]
domain = "example.net"
selector = "s1"
key = "/etc/dmarcd/dkim.pem"
`,
		line: 4, key: "reports.dkim.domain", msg: `does not align with the domain of reports.from_address`,
	},
	{
		name: "failure reports without a From address",
		toml: `
[failure_reports]
enabled = true
`,
		line: 1, key: "failure_reports.from_address", msg: `required when failure_reports.enabled`,
	},
	{
		name: "failure reports from an address the DKIM domain does not align with",
		toml: `
[reports.dkim]
domain = "example.net"
selector = "s1"
key = "/etc/dmarcd/dkim.pem"
[failure_reports]
from_address = "dmarc@example.com"
`,
		line: 6, key: "failure_reports.from_address", msg: `does not align with reports.dkim.domain`,
	},
	{
		name: "failure reports with an unknown content",
		toml: `
[failure_reports]
include = "body"
`,
		line: 2, key: "failure_reports.include", msg: `body`,
	},
	{
		name: "a redacted header that is not a field name",
		toml: `
[failure_reports]
redact_headers = ["Subject", "X Bad"]
`,
		line: 2, key: "failure_reports.redact_headers[1]", msg: `is not a header field name`,
	},
	{
		name: "a failure report rate without a period",
		toml: `
[failure_reports]
rate_per_domain = "10"
`,
		line: 2, key: "failure_reports.rate_per_domain", msg: `want a count and a duration such as "100/1h"`,
	},
	{
		name: "a DKIM key without a selector",
		toml: `
[reports.dkim]
domain = "example.com"
key = "/etc/dmarcd/dkim.pem"
`,
		line: 1, key: "reports.dkim.selector", msg: `required with reports.dkim.key`,
	},
	{
		name: "a relative DKIM key path",
		toml: `
[reports.dkim]
domain = "example.com"
selector = "s1"
key = "dkim.pem"
`,
		line: 4, key: "reports.dkim.key", msg: `not an absolute path`,
	},
	{
		name: "a relay password without a user",
		toml: `
[reports.relay]
password = "secret"
`,
		line: 1, key: "reports.relay.username", msg: `required with a password`,
	},
	{
		name: "a relay port out of range",
		toml: `
[reports.relay]
address = "smtp.example.com:99999"
`,
		line: 2, key: "reports.relay.address", msg: `out of range`,
	},
	{
		name: "an unknown format in the second destination table",
		toml: `
[[reports.destination]]
match = "a.example"
format = "rfc9990"

[[reports.destination]]
match = "b.example"
format = "rfc9991"
`,
		line: 7, key: "reports.destination[1].format", msg: `unknown report format "rfc9991" (want "rfc7489" or "rfc9990")`,
	},
	{
		name: "a destination table without match",
		toml: `
[[reports.destination]]
format = "rfc9990"
`,
		line: 1, key: "reports.destination[0].match", msg: `required`,
	},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.TrimPrefix(tc.toml, "\n")
			c, err := Parse("dmarcd.toml", []byte(src))
			if err == nil {
				t.Fatalf("Parse accepted the document:\n%s", src)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with the error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			if len(es) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(es), err)
			}
			e := es[0]
			if e.File != "dmarcd.toml" || e.Line != tc.line || e.Key != tc.key {
				t.Errorf("got %s:%d key %q, want dmarcd.toml:%d key %q\n%v", e.File, e.Line, e.Key, tc.line, tc.key, e)
			}
			if !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", e.Error(), tc.msg)
			}
			prefix := "dmarcd.toml:" + strconv.Itoa(tc.line) + ": "
			if !strings.HasPrefix(e.Error(), prefix) {
				t.Errorf("message %q does not start with %q", e.Error(), prefix)
			}
		})
	}
}

func TestUnknownKeyMessageReadsAsDocumented(t *testing.T) {
	_, err := Parse("dmarcd.toml", []byte("[milter]\n\n\n\n\n\n\n\n\n\n\nmax_conection = 10\n"))
	want := `dmarcd.toml:12: unknown key "milter.max_conection" (did you mean "max_connections"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("errors.Is(err, ErrUnknownKey) is false")
	}
}

func TestEveryProblemIsReportedInFileOrder(t *testing.T) {
	src := `spec = "rfc7489"
[milter]
idle_timeout = 600
dns_budget = "90s"

[[listener]]
address = "inet:0"
bogus = 1
`
	_, err := Parse("/etc/dmarcd/dmarcd.toml", []byte(src))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Key+"@"+strconv.Itoa(e.Line))
	}
	want := []string{"milter.idle_timeout@3", "milter.dns_budget@4", "listener[0].address@7", "listener[0].bogus@8"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %v\nwant %v\n%v", got, want, err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "/etc/dmarcd/dmarcd.toml:3: milter.idle_timeout: ") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestAValueThatFailsToDecodeIsNotAlsoValidated(t *testing.T) {
	// dns_budget keeps its default of 10s, which would make the timeout
	// too long; only the type error is the user's problem.
	_, err := Parse("x.toml", []byte("[milter]\ndns_budget = 5\n[dns]\ntimeout = \"8s\"\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Key != "milter.dns_budget" {
		t.Fatalf("got %v", err)
	}
}

func TestValidateWithoutAFileGivesKeysOnly(t *testing.T) {
	c := Default()
	c.Milter.DNSBudget = 0
	c.Listeners = append(c.Listeners, Listener{Address: MustParseSocket("inet:8893@127.0.0.1")})
	err := c.Validate()
	want := "milter.dns_budget: must be positive, not 0s\n" +
		"listener[1].address: inet:8893@127.0.0.1 conflicts with listener[0].address inet:8893@127.0.0.1: the same socket"
	var got []string
	for _, e := range err.(Errors) {
		got = append(got, e.Error())
	}
	// Validate reports in check order; compare as sets.
	if len(got) != 2 || !strings.Contains(want, got[0]) || !strings.Contains(want, got[1]) {
		t.Errorf("got %q", got)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/dmarcd.toml"
	if err := os.WriteFile(p, []byte("[log]\nlevel = \"loud\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2: log.level: ") {
		t.Errorf("got %v", err)
	}
	if _, err := Load(dir + "/missing.toml"); err == nil {
		t.Errorf("Load of a missing file succeeded")
	}
}
