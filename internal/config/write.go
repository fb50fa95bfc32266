package config

import (
	"bytes"
	"encoding"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/dmarcd/dmarcd/dmarc"
)

// WriteTOML writes c as a dmarcd.toml document: every key, each with a
// comment saying what it does, its default and its opendmarc.conf
// equivalent. Parse reads the output back to a Config equal to c when c is
// valid. An empty array of tables (no [[override]]) is written as a
// commented-out example.
func (c *Config) WriteTOML(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString(fileHeader)
	if err := writeTable(&b, "", "", reflect.ValueOf(c).Elem(), true, ""); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

const fileHeader = `# dmarcd.toml: configuration of dmarcd, the DMARC milter.
#
# Every key is optional: one left out takes the default shown with it.
# Keys are case-sensitive; an unknown key, a value of the wrong type or an
# invalid value stops dmarcd at start-up, naming the file, line and key.
# Durations are strings with a unit: "500ms", "10s", "5m", "1h", "1d".
# Lists (arrays) replace the default list as a whole.

`

// isTable reports whether a field of type t is written as a [table] or
// [[array]] rather than as key = value.
func isTable(t reflect.Type) bool {
	if isScalar(t) {
		return false
	}
	if t.Kind() == reflect.Slice {
		return t.Elem().Kind() == reflect.Struct && !isScalar(t.Elem())
	}
	return t.Kind() == reflect.Struct
}

// writeTable writes the keys of struct v, then its tables. path is the
// header path of v ("" at the top), generic its documentation path;
// documented asks for comments; prefix goes before every line that is not
// a comment ("# " for a commented-out example).
func writeTable(b *bytes.Buffer, path, generic string, v reflect.Value, documented bool, prefix string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" || isTable(f.Type) {
			continue
		}
		lit, err := literal(v.Field(i))
		if err != nil {
			return fmt.Errorf("config: %s: %w", joinKey(path, name), err)
		}
		if documented {
			writeDoc(b, joinKey(generic, name))
		}
		fmt.Fprintf(b, "%s%s = %s\n", prefix, joinKey("", name), strings.ReplaceAll(lit, "\n", "\n"+prefix))
		if documented {
			b.WriteByte('\n')
		}
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" || !isTable(f.Type) {
			continue
		}
		p, g := joinKey(path, name), joinKey(generic, name)
		fv := v.Field(i)
		if !documented {
			b.WriteByte('\n')
		}
		if f.Type.Kind() == reflect.Struct {
			if documented {
				writeSectionDoc(b, g, "["+p+"]")
			}
			fmt.Fprintf(b, "%s[%s]\n", prefix, p)
			if documented {
				b.WriteByte('\n')
			}
			if err := writeTable(b, p, g, fv, documented, prefix); err != nil {
				return err
			}
			continue
		}
		if documented {
			writeSectionDoc(b, g, "[["+p+"]]")
		}
		if fv.Len() == 0 {
			ex, ok := examples[g]
			if !ok {
				continue
			}
			b.WriteString("# Example:\n#\n")
			fmt.Fprintf(b, "# [[%s]]\n", p)
			if documented {
				b.WriteString("#\n")
			}
			if err := writeTable(b, p, g, reflect.ValueOf(ex), documented, "# "); err != nil {
				return err
			}
			continue
		}
		for j := range fv.Len() {
			if j > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(b, "%s[[%s]]\n", prefix, p)
			if documented && j == 0 {
				b.WriteByte('\n')
			}
			if err := writeTable(b, p, g, fv.Index(j), documented && j == 0, prefix); err != nil {
				return err
			}
		}
		if documented && fv.Len() > 1 {
			b.WriteByte('\n')
		}
	}
	return nil
}

// examples are written, commented out, for arrays of tables left empty.
var examples = map[string]any{
	"listener":            DefaultListener(),
	"override":            Override{Domain: "example.com", Policy: dmarc.PolicyNone, Comment: "partner mailing list"},
	"reports.destination": ReportDestination{Match: "dmarc.example.net", Format: FormatRFC9990},
}

// literal returns the TOML text of the value of a key.
func literal(v reflect.Value) (string, error) {
	t := v.Type()
	if c, ok := codecs[t]; ok {
		return quote(c.format(v.Interface())), nil
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		text, err := m.MarshalText()
		if err != nil {
			return "", err
		}
		return quote(string(text)), nil
	}
	switch t.Kind() {
	case reflect.String:
		return quote(v.String()), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Slice:
		items := make([]string, v.Len())
		width := 0
		for i := range v.Len() {
			s, err := literal(v.Index(i))
			if err != nil {
				return "", err
			}
			items[i] = s
			width += len(s) + 2
		}
		if width <= 60 {
			return "[" + strings.Join(items, ", ") + "]", nil
		}
		return "[\n    " + strings.Join(items, ",\n    ") + ",\n]", nil
	}
	return "", fmt.Errorf("cannot write a %s", t)
}

// quote returns s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeDoc writes the comment of the key at generic path p.
func writeDoc(b *bytes.Buffer, p string) {
	d, ok := docs[p]
	if !ok {
		panic("config: no documentation for " + p)
	}
	writeComment(b, d.text)
	def := d.def
	if def == "" {
		def = defaultLiteral(p)
	}
	if def != "" {
		writeComment(b, "Default: "+def+".")
	}
	if d.opendmarc != "" {
		writeComment(b, "OpenDMARC: "+d.opendmarc+".")
	}
}

// writeSectionDoc writes the comment of the table at generic path p.
func writeSectionDoc(b *bytes.Buffer, p, header string) {
	d, ok := docs[p]
	if !ok {
		panic("config: no documentation for " + p)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n\n")) {
		b.WriteByte('\n')
	}
	b.WriteString(strings.Repeat("#", 76) + "\n")
	writeComment(b, header+": "+d.text)
	if d.def != "" {
		writeComment(b, "Default: "+d.def+".")
	}
	if d.opendmarc != "" {
		writeComment(b, "OpenDMARC: "+d.opendmarc+".")
	}
	b.WriteString(strings.Repeat("#", 76) + "\n\n")
}

// writeComment writes text as "# " lines wrapped at 76 columns; "\n" in
// text starts a new paragraph line.
func writeComment(b *bytes.Buffer, text string) {
	for _, para := range strings.Split(text, "\n") {
		line := "#"
		for _, w := range strings.Fields(para) {
			if len(line)+1+len(w) > 76 && line != "#" {
				b.WriteString(line + "\n")
				line = "#"
			}
			line += " " + w
		}
		b.WriteString(line + "\n")
	}
}

// defaultLiteral returns the TOML text of the default of the key at
// generic path p, found in Default(); "" for keys inside arrays of tables.
func defaultLiteral(p string) string {
	v := reflect.ValueOf(Default()).Elem()
	for _, k := range strings.Split(p, ".") {
		if v.Kind() != reflect.Struct {
			return ""
		}
		i := fieldByKey(v.Type(), k)
		if i < 0 {
			return ""
		}
		v = v.Field(i)
	}
	lit, err := literal(v)
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(lit), " ")
}

// doc is the comment of one key or table.
type doc struct {
	text      string // what it does; "\n" breaks lines
	def       string // the default as text, when Default() cannot say it
	opendmarc string // the opendmarc.conf equivalent, if any
}

// docs documents every key and table by generic path. TestDocsCoverConfig
// checks it against Config.
var docs = map[string]doc{
	"received":                  {text: `the DMARC reports other receivers send about your domains: "dmarcd import" stores them in the [store]; "dmarcd summary" and the dashboard summarise them. Source IPs get their PTR names when a summary is made, never during an import.`},
	"received.mailboxes":        {text: `The addresses where other receivers send their reports about your domains (the rua= and ruf= of your own DMARC records), when their mail passes through this MTA. Mail to them is read as it passes and its reports stored, as "dmarcd import" would; it is delivered as usual. Mail over dkim.max_message_size, or that DMARC rejects, is not read.`},
	"received.queue_size":       {text: `How many report mails may wait to be read and stored. Beyond it a mail is delivered without being read, and a warning says so: import the mailbox later.`},
	"received.resolve_names":    {text: `Look up the PTR names of the source IPs that summaries and the dashboard show, through the [dns] resolver and its cache ("dmarcd summary -no-names" skips them once).`},
	"received.name_timeout":     {text: `How long one PTR lookup may take, at most 30s: a summary never waits longer for a name, it shows the address alone.`},
	"received.name_concurrency": {text: `How many PTR lookups may be in flight at once, 1 to 100.`},
	"received.name_cache_ttl":   {text: `How long a PTR name (or the lack of one) is kept in memory; a failed lookup is kept one minute.`},
	"received.name_cache_size":  {text: `How many PTR names are kept in memory; the least recently used go first.`},

	"spec": {
		text:      `The DMARC specification to follow: "rfc9989", DMARC as standardized in 2026 (organizational domain by DNS tree walk; np, psd and t tags), or "rfc7489", the 2015 RFC (public suffix list; pct tag).`,
		opendmarc: "none, OpenDMARC 1.4 implements RFC 7489",
	},
	"authserv_id": {
		text:      `The authserv-id of the Authentication-Results header fields dmarcd adds. "" takes the MTA's name (milter macro {j}), or else the host name; "HOSTNAME" always takes the host name. One token: no spaces or ';'.`,
		opendmarc: "AuthservID",
	},
	"trusted_authserv_ids": {
		text:      `Authentication-Results header fields with one of these authserv-ids are read for SPF and DKIM results (from an SPF policy service, OpenDKIM, ...); all others are ignored. An empty list trusts our own authserv-id alone; a list trusts ours only if it is listed, and otherwise removes fields claiming it as forged. "HOSTNAME" stands for the host name. Case is ignored.`,
		opendmarc: "TrustedAuthservIDs (which without a value trusts AuthservID alone, as an empty list does here, and with one trusts AuthservID too)",
	},
	"authserv_id_with_job_id": {
		text:      `Write "<authserv-id>/<queue-id>" as the authserv-id of our Authentication-Results, so that each header field names the message it was written for.`,
		opendmarc: "AuthservIDWithJobID",
	},
	"state_dir": {
		text:      `Directory for dmarcd's data: the aggregate report database and its queue. It must be writable by dmarcd.`,
		opendmarc: "none; HistoryFile is the nearest",
	},
	"pid_file": {
		text:      `File to write the process ID to at start-up; "" writes none (systemd does not need one).`,
		opendmarc: "PidFile",
	},
	"user": {
		text:      `The user to run as once the sockets are open: "name", with that user's groups, or "name:group"; names or numeric ids. Unix sockets without a socket_owner or socket_group are given to this user and group. "" stays the user dmarcd was started as (under systemd, set User= in the unit instead).`,
		opendmarc: "UserID",
	},
	"umask": {
		text:      `The file mode creation mask, an octal string such as "0027", for the files dmarcd creates (PID file, history file); "" leaves the mask dmarcd inherits. Unix sockets take listener.socket_mode instead.`,
		opendmarc: "UMask (which also sets the mode of the socket)",
	},
	"public_suffix_list": {
		text:      `With spec = "rfc7489": a public suffix list file (the format of publicsuffix.org, such as Debian's /usr/share/publicsuffix/public_suffix_list.dat) to find organizational domains with; "" uses the list built into dmarcd. RFC 9989 needs no list.`,
		opendmarc: "PublicSuffixList (without which OpenDMARC finds no organizational domains at all)",
	},
	"history_file": {
		text:      `A file to which a record of every evaluated message is appended in OpenDMARC's history format, for opendmarc-import and the report tools built on it; "" writes none. dmarcd keeps its own report data under state_dir in any case.`,
		opendmarc: "HistoryFile",
	},
	"record_all_messages": {
		text:      `Write history records also for messages whose From domain publishes no DMARC record.`,
		opendmarc: "RecordAllMessages",
	},
	"software_header": {
		text:      `Add a "DMARC-Filter: dmarcd <version> <host>" header field to the messages dmarcd evaluates.`,
		opendmarc: "SoftwareHeader",
	},
	"copy_failures_to": {
		text:      `An address (local@domain, no angle brackets) added as a recipient of every message that fails DMARC under p=quarantine or p=reject, to watch what the policy would do; "" adds none.`,
		opendmarc: "CopyFailuresTo",
	},
	"heap_target": {
		text: `How large dmarcd's Go heap may grow before it is collected, while the data it holds (mostly the DNS cache) is under half of it: memory spent to save CPU time and the slowest replies. Past half, the heap grows to twice its data, Go's default. "0B" collects whenever the heap has doubled, as does a GOGC environment variable. Sizes as dkim.max_message_size: "0B" or 16MiB to 64GiB. Read at start-up only.`,
	},

	"listener": {
		text:      `a milter socket for the MTA to connect to. Repeat the table for more sockets. At least one is required; the tables given replace the default listener.`,
		def:       `one listener on "inet:8893@127.0.0.1" in strict mode`,
		opendmarc: "Socket",
	},
	"listener.address": {
		text: `The socket. "inet:PORT@HOST" is TCP over IPv4 ("inet:8893@127.0.0.1"); "inet:PORT" alone listens on ALL IPv4 interfaces, as in OpenDMARC. "inet6:PORT@[HOST]" is TCP over IPv6. "unix:/PATH" (or "local:/PATH", or just "/PATH") is a Unix domain socket. "tcp://HOST:PORT" works too.` +
			"\nPostfix connects with smtpd_milters = inet:127.0.0.1:8893 (or unix:/PATH, relative to Postfix's chroot if it runs in one).",
		def:       `none, each [[listener]] must give it`,
		opendmarc: "Socket",
	},
	"listener.mode": {
		text:      `"strict" evaluates DMARC and enforces the outcome as [policy] says. "relaxed" evaluates, adds headers and records report data but never rejects, temp-fails or quarantines: a dry run. "disable" passes every message without evaluating it.`,
		def:       `"strict"`,
		opendmarc: `RejectFailures (false there is "relaxed" here)`,
	},
	"listener.socket_owner": {
		text:      `Owner of a Unix socket, a user name or uid; "" gives it to the user of the top-level key user, or leaves dmarcd's. Unix sockets only.`,
		def:       `""`,
		opendmarc: "none; OpenDMARC's socket belongs to its UserID, as here to user when this is empty",
	},
	"listener.socket_group": {
		text:      `Group of a Unix socket, a name or gid, typically "postfix" so that Postfix can connect; "" gives it to the group of the top-level key user, or leaves dmarcd's. Unix sockets only.`,
		def:       `""`,
		opendmarc: "the group of UserID (see user)",
	},
	"listener.socket_mode": {
		text:      `Permissions of a Unix socket, an octal string. Ignored for TCP.`,
		def:       `"0660"`,
		opendmarc: `UMask ("0660" is UMask 007)`,
	},

	"milter": {
		text: `the milter protocol server.`,
	},
	"milter.max_connections": {
		text: `The most MTA connections served at once; more wait to be accepted. Postfix opens one per SMTP session.`,
	},
	"milter.idle_timeout": {
		text: `How long to wait for the MTA's next milter command before closing the connection. It must exceed Postfix's smtpd_timeout (300s): Postfix keeps the milter waiting while the SMTP client is slow.`,
	},
	"milter.write_timeout": {
		text: `How long writing one reply to the MTA may take.`,
	},
	"milter.dns_budget": {
		text: `All the DNS time one message may use; when it runs out, the result is temperror (see policy.temperror). At most 60s, to stay well under Postfix's milter_content_timeout (300s).`,
	},
	"milter.shutdown_timeout": {
		text: `On SIGTERM, how long messages in flight may take to finish before their connections are closed.`,
	},

	"policy": {
		text: `what DMARC outcomes do to messages on strict listeners. Relaxed listeners only add the header and record report data.`,
	},
	"policy.reject": {
		text:      `A message failing DMARC for a domain that publishes p=reject: "reject" refuses it with reject_reply; "quarantine" handles it as p=quarantine (see quarantine); "accept" delivers it, with the header only.`,
		opendmarc: `RejectFailures (true is "reject")`,
	},
	"policy.quarantine": {
		text:      `A message failing DMARC for a domain that publishes p=quarantine: "hold" asks the MTA to quarantine it (Postfix's hold queue; release with postsuper -H); "header" delivers it and leaves filing to later filters, which read the header.`,
		opendmarc: `HoldQuarantinedMessages (true is "hold"; its default false is "header")`,
	},
	"policy.temperror": {
		text:      `When the DMARC record could not be looked up (DNS failure, dns_budget spent): "accept" delivers the message with dmarc=temperror; "tempfail" answers tempfail_reply, so that the sender retries.`,
		opendmarc: `none: its man page says RejectFailures temp-fails, but OpenDMARC 1.4 accepts such mail as dmarc=none`,
	},
	"policy.permerror": {
		text: `When the DMARC record is malformed: "accept" delivers the message with dmarc=permerror; "reject" refuses it with reject_reply.`,
	},
	"policy.multiple_from": {
		text:      `A From header field with several addresses: "strictest" evaluates every From domain and applies the strictest outcome; "reject" refuses the message unless all addresses share one domain; "first" evaluates the first address only.`,
		opendmarc: `RejectMultiValueFrom (true is "reject"; without it OpenDMARC passes such mail unevaluated)`,
	},
	"policy.missing_from": {
		text:      `A message without a From header field, or without a domain in it: "reject" refuses it (RFC 5322 requires one From); "accept" delivers it unevaluated, without a DMARC header, as OpenDMARC does.`,
		opendmarc: `RequiredHeaders or RequiredFrom (true is "reject")`,
	},
	"policy.missing_dkim_result": {
		text: `A message with a DKIM-Signature but no dkim= result in a trusted Authentication-Results (the DKIM verifier before dmarcd did not run, or failed): "fail" evaluates with the results at hand, so the signature counts as not verified; "tempfail" answers tempfail_reply, so that the sender retries.`,
	},
	"policy.reject_reply": {
		text:      `The SMTP reply refusing a message: a 5xx code, a 5.x.y enhanced status code, then text. {domain} is replaced by the From domain.`,
		opendmarc: `RejectString ("%s" there is {domain} here, and the codes are fixed at 550 5.7.1)`,
	},
	"policy.tempfail_reply": {
		text: `The SMTP reply temp-failing a message: a 4xx code, a 4.x.y enhanced status code, then text with {domain}.`,
	},
	"policy.add_header": {
		text:      `Add an Authentication-Results header field with the DMARC result, such as "dmarc=pass header.from=example.com".`,
		opendmarc: "none, OpenDMARC always adds it",
	},
	"policy.remove_forged_headers": {
		text: `Remove Authentication-Results header fields that carry our authserv-id but came from outside, so that senders cannot forge our verdicts.`,
	},

	"policy.required_headers": {
		text:      `Reject messages that break the header field counts of RFC 5322 §3.6: exactly one From and one Date; at most one Sender, Reply-To, To, Cc, Bcc, Message-ID, In-Reply-To, References and Subject.`,
		opendmarc: `RequiredHeaders (which also rejects mail without a usable From; here that is missing_from)`,
	},

	"ignore": {
		text: `mail passed through without evaluation: no header, no report data, no rejection.`,
	},
	"ignore.hosts": {
		text:      `SMTP clients to ignore: IP addresses and CIDR ranges ("192.0.2.0/24", "2001:db8::/32"). Host names are not accepted.`,
		opendmarc: `IgnoreHosts (a file, which may hold host names; without it, 127.0.0.1 alone)`,
	},
	"ignore.authenticated": {
		text:      `Ignore clients that logged in with SMTP AUTH (the {auth_authen} macro): your own users sending out.`,
		opendmarc: `IgnoreAuthenticatedClients (false by default there)`,
	},
	"ignore.from_domains": {
		text:      `Ignore messages whose From domain is listed: "example.com" matches that domain only, "*.example.com" its subdomains only. Case is ignored; internationalized names may be written in Unicode.`,
		opendmarc: `IgnoreMailFrom (which, despite its name, matches the From header's domain)`,
	},
	"ignore.mail_from_domains": {
		text: `Ignore messages whose envelope sender (MAIL FROM) domain is listed, matched as from_domains.`,
	},
	"ignore.recipients": {
		text:      `Ignore messages all of whose recipients are listed: addresses ("dmarc-reports@example.com") or domains ("@reports.example.com"). For report mailboxes and to break report loops. Case is ignored.`,
		opendmarc: `IgnoreMailTo (which only keeps such mail out of the history file)`,
	},

	"spf": {
		text: `where SPF results come from.`,
	},
	"spf.use_upstream": {
		text:      `Read the spf= results of trusted Authentication-Results header fields (from an SPF policy service in front of dmarcd).`,
		opendmarc: `SPFIgnoreResults (true there is false here)`,
	},
	"spf.self_check": {
		text:      `Check SPF (RFC 7208) for the envelope ourselves when no usable upstream result arrived, or always when use_upstream is false. With both false, DMARC rests on DKIM alone.`,
		opendmarc: `SPFSelfValidate (false by default there)`,
	},

	"dkim": {
		text: `where DKIM results come from.`,
	},
	"dkim.self_verify": {
		text:      `Verify DKIM signatures ourselves instead of reading dkim= results from trusted Authentication-Results (from OpenDKIM in front of dmarcd). dmarcd then asks the MTA for message bodies.`,
		opendmarc: "none, OpenDMARC reads upstream results only",
	},
	"dkim.max_message_size": {
		text: `Messages larger than this are not kept in memory for DKIM verification and ARC validation: they get no result of dmarcd's own and are evaluated with upstream results alone. A size with a unit: "512KiB", "32MiB", "1GiB" (powers of 1024) or "10MB" (powers of 1000). At most "1GiB".`,
	},

	"arc": {
		text: `the ARC override of DMARC failures (RFC 8617 §7.2.1): mail that mailing lists and forwarders broke, sealed by ones you trust.`,
	},
	"arc.trusted_sealers": {
		text:      `Domains of ARC sealers (the d= of ARC-Seal) to trust. When a message fails DMARC, its ARC chain validates (cv=pass), the newest sealer is listed, and a listed sealer's ARC-Authentication-Results show an SPF or DKIM pass aligned with the From domain, the failure is overridden with reason trusted_forwarder, for p=reject and p=quarantine alike. Exact domains; empty disables the override.`,
		opendmarc: "DomainWhitelist and DomainWhitelistFile",
	},

	"override": {
		text: `a local policy for a From domain, applied instead of the published one when its mail fails DMARC, and reported as override reason local_policy. Repeat the table for more domains.`,
		def:  "none",
	},
	"override.domain": {
		text: `The From domain: "example.com" exactly, or "*.example.com" for its subdomains.`,
		def:  "none, required",
	},
	"override.policy": {
		text: `The policy applied instead of the published one: "none", "quarantine" or "reject".`,
		def:  "none, required",
	},
	"override.comment": {
		text: `Why, for the logs and the override comment in aggregate reports.`,
		def:  `""`,
	},

	"dns": {
		text: `the DNS resolver and its cache.`,
	},
	"dns.nameservers": {
		text: `Recursive resolvers to ask, in order: "192.0.2.53", "192.0.2.53:5353", "2001:db8::53" or "[2001:db8::53]:5353". An empty list uses the nameservers of /etc/resolv.conf.`,
	},
	"dns.timeout": {
		text:      `How long to wait for one answer from one nameserver. At most milter.dns_budget.`,
		opendmarc: `DNSTimeout (in seconds there, 5 by default)`,
	},
	"dns.attempts": {
		text: `How often each nameserver is tried before a lookup fails with temperror.`,
	},
	"dns.cache_size": {
		text: `The most answers cached; the least recently used go first.`,
	},
	"dns.min_ttl": {
		text: `Shorter TTLs, of positive and negative answers, are raised to this. "0s" honours TTLs as published.`,
	},
	"dns.max_ttl": {
		text: `Longer TTLs of answers are lowered to this, so that a changed DMARC record is seen within this time.`,
	},
	"dns.negative_max_ttl": {
		text: `Longer TTLs of negative answers (no such name, no record) are lowered to this, so that a newly published record is seen soon.`,
	},

	"log": {
		text: `logging: one line per message at level info.`,
	},
	"log.level": {
		text: `The least severe level logged: "debug", "info", "warn" or "error".`,
	},
	"log.format": {
		text: `"text" (key=value pairs) or "json" (one object per line).`,
	},
	"log.syslog": {
		text:      `Also send the log to the local syslog daemon (/dev/log), at the same level. Under systemd the journal already has standard error.`,
		opendmarc: "Syslog",
	},
	"log.syslog_facility": {
		text:      `The syslog facility: "mail", "daemon", "local0" to "local7", or another name of syslog.conf(5).`,
		opendmarc: "SyslogFacility",
	},
	"store": {
		text: `where aggregate report data is kept. Every evaluated message with a DMARC record becomes a row, rolled up per hour and record; writes are batched off the SMTP path (group commit). A crash (kill -9, power loss with PostgreSQL) loses at most the rows of the last flush_interval or flush_rows, whichever is fewer, plus those arriving during one write; a stop with SIGTERM loses none.`,
	},
	"store.driver": {
		text: `"sqlite", an embedded database file under state_dir, nothing to install; or "postgres", which several dmarcd nodes can share: exactly one of them then sends the reports.`,
	},
	"store.path": {
		text: `With driver = "sqlite": the database file; "" is dmarcd.db in state_dir.`,
	},
	"store.dsn": {
		text: `With driver = "postgres": the connection string, a URL ("postgres://dmarcd:secret@db.example.com/dmarcd?sslmode=verify-full") or key=value pairs as libpq takes them. Connect directly or through a pooler in session mode (the sender lease is a session advisory lock).`,
	},
	"store.dsn_file": {
		text: `With driver = "postgres": a file holding the connection string, to keep its password out of this file (mode 0600). Give dsn or dsn_file.`,
	},
	"store.flush_interval": {
		text: `The longest a row waits in memory before it is written; with flush_rows, what a crash of dmarcd can lose.`,
	},
	"store.flush_rows": {
		text: `A write starts as soon as this many rows wait.`,
	},
	"store.queue_size": {
		text: `How many rows may wait to be written. When the database is down or too slow and the queue is full, further rows are dropped (and counted in the log) rather than delay the MTA: reports then under-count.`,
	},

	"reports": {
		text: `the aggregate reports dmarcd sends (RFC 7489 §7.2, RFC 9990) to the rua destinations of the domains whose mail it evaluated: built from the store, DKIM-signed, handed to an SMTP relay.`,
	},
	"reports.enabled": {
		text:      `Send aggregate reports. Off by default: an MTA must not start mailing the world until its administrator decides it should. Data is collected (and expired) either way; "dmarcd reports list" and "dmarcd reports preview" show it.`,
		opendmarc: "none: OpenDMARC writes HistoryFile, and the opendmarc-import and opendmarc-reports scripts send",
	},
	"reports.org_name": {
		text:      `Who reports: report_metadata's org_name, also part of every report ID. Required when enabled.`,
		opendmarc: "opendmarc-reports --report-org",
	},
	"reports.from_name": {
		text: `The display name of the reports' From field.`,
	},
	"reports.from_address": {
		text:      `The From address of the reports, also their envelope sender (bounces come back to it). Its domain should align with dkim.domain and have SPF for the relay, so that reports pass DMARC as RFC 7489 §7.2.1.1 requires. Required when enabled.`,
		opendmarc: "opendmarc-reports --report-email",
	},
	"reports.contact_email": {
		text: `report_metadata's email, where report receivers write to; "" is from_address.`,
	},
	"reports.contact_info": {
		text: `report_metadata's extra_contact_info: a URL or text for questions about the reports; "" writes none.`,
	},
	"reports.submitter": {
		text: `The reporting domain in the Subject ("Report Domain: X Submitter: Y Report-ID: <Z>") and the attachment's file name; "" is the domain of from_address.`,
	},
	"reports.interval_floor": {
		text: `The shortest report period: "hourly", "daily" or "weekly". A domain evaluated under RFC 7489 gets the period its record's ri asks for, rounded down to 1, 2, 3, 4, 6, 8 or 12 hours, a day or a week, and raised to this floor; RFC 9989 removed ri, and its domains get a day. Periods begin on UTC boundaries. "never" sends no reports at all.`,
	},
	"reports.interval_ceiling": {
		text: `The longest report period: "hourly", "daily" or "weekly". RFC 7489 asks for reports "separated by no more than" ri, so a daily ceiling serves a weekly ri too.`,
	},
	"reports.close_delay": {
		text: `How long after a period ends its report is made: time for the rows still queued on every node to reach the store. It must exceed store.flush_interval. Rows arriving later are kept but never reported.`,
	},
	"reports.max_backlog": {
		text: `After an outage (or when reports are first enabled), periods that ended longer ago than this are recorded as skipped instead of being mailed late; the more recent ones are all sent, oldest first.`,
	},
	"reports.format": {
		text: `The XML format: "rfc7489" (Appendix C, what every report consumer reads) or "rfc9990" (namespace urn:ietf:params:xml:ns:dmarc-2.0). [[reports.destination]] picks another format for some destinations.`,
	},
	"reports.max_size": {
		text: `The largest report sent, measured after gzip and base64 as rua "!size" limits are. A destination's own !size limit (RFC 7489) applies too; a report over either is not sent there, and when no destination can take it, RFC 7489 destinations get the short error report of §7.2.2.`,
	},
	"reports.spread": {
		text: `The window over which one period's reports leave: each waits a fixed offset within it (a hash of domain and period, at most the period's length), so that a day's reports do not all leave at midnight. Big mailbox providers block bursts. "0s" sends at once.`,
	},
	"reports.rate_per_destination": {
		text: `At most this many deliveries to one destination domain in any window of the given length: "100/1h", "10/1m", "2000/1d", or "unlimited". Deliveries held back wait for the next window.`,
	},
	"reports.rate_global": {
		text: `At most this many deliveries in all in any window of the given length, or "unlimited".`,
	},
	"reports.concurrency": {
		text: `The most report deliveries in progress at once, and the most _report._dmarc destination checks.`,
	},
	"reports.retry_backoff": {
		text: `The wait after a delivery fails temporarily; it doubles at each further failure, up to retry_backoff_max.`,
	},
	"reports.retry_backoff_max": {
		text: `The longest wait between two attempts at a delivery.`,
	},
	"reports.retry_max_age": {
		text: `How long a destination that keeps deferring (4xx) is retried before its delivery is given up. Failures of the relay itself (connection, TLS, authentication) are retried without end: a report stays pending until delivered.`,
	},
	"reports.suppress": {
		text:      `Destinations that never get reports: addresses ("dmarc@example.com") or domains ("example.com", covering its subdomains). Kept in the store's suppression list, beside the destinations added after repeated permanent failures.`,
		opendmarc: "NoReportsList (the file is read: one entry a line)",
	},
	"reports.suppress_after": {
		text: `A destination that refuses reports permanently this many times in a row is added to the suppression list; 0 never adds one.`,
	},
	"reports.expire_after": {
		text:      `How long report data (hourly counts, sent reports) is kept; reports still pending are kept until delivered. "0s" keeps everything.`,
		opendmarc: "opendmarc-expire --expire",
	},

	"reports.relay": {
		text: `the SMTP server report mail is handed to. The default, the local MTA on localhost:25, connects from 127.0.0.1, which ignore.hosts lists: dmarcd does not evaluate, and so never reports on, its own report mail.`,
	},
	"reports.relay.address": {
		text: `host:port of the relay; a missing port is 25.`,
	},
	"reports.relay.starttls": {
		text: `"opportunistic" uses STARTTLS when offered, without checking the certificate; "required" insists on it with a certificate valid for the host; "none" never uses TLS.`,
	},
	"reports.relay.username": {
		text: `The user name for SMTP AUTH (PLAIN or LOGIN); "" does not authenticate. Credentials go only over TLS or to a relay on a loopback address.`,
	},
	"reports.relay.password": {
		text: `The SMTP AUTH password; better in password_file.`,
	},
	"reports.relay.password_file": {
		text: `A file holding the SMTP AUTH password (its first line).`,
	},
	"reports.relay.helo_name": {
		text: `The name given in EHLO; "" is the host name.`,
	},
	"reports.relay.timeout": {
		text: `How long each step of an SMTP session may take.`,
	},

	"reports.dkim": {
		text: `the DKIM signature of report mail (RFC 6376), which lets reports pass DMARC aligned with from_address. Leave domain empty to send unsigned (when the relay signs).`,
	},
	"reports.dkim.domain": {
		text: `The signing domain (d=). It must align with the domain of from_address.`,
	},
	"reports.dkim.selector": {
		text: `The selector of the RSA key, published at <selector>._domainkey.<domain>.`,
	},
	"reports.dkim.key": {
		text: `The RSA private key, a PEM file (PKCS#1 or PKCS#8, as opendkim-genkey or openssl genrsa writes), 2048 bits or more; readable by dmarcd only.`,
	},
	"reports.dkim.ed25519_selector": {
		text: `The selector of an Ed25519 key (RFC 8463), for a second signature; "" signs with RSA only.`,
	},
	"reports.dkim.ed25519_key": {
		text: `The Ed25519 private key, a PKCS#8 PEM file (openssl genpkey -algorithm ed25519).`,
	},

	"reports.destination": {
		text: `the report format for some destinations. Repeat the table for more; the first that matches wins.`,
		def:  "none",
	},
	"reports.destination.match": {
		text: `An address, or a domain covering its subdomains.`,
		def:  "none, required",
	},
	"reports.destination.format": {
		text: `"rfc7489" or "rfc9990".`,
		def:  `"rfc7489"`,
	},
}
