package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dmarcd/dmarcd/dmarc"
)

// This file reads opendmarc.conf, OpenDMARC's configuration, as OpenDMARC
// 1.4 does (config.c and dmarcf_config_load in opendmarc.c): one "Key
// value" per line, the key case-insensitive, everything from "#" on a
// comment, the value the rest of the line with the blanks around it
// trimmed. What differs from OpenDMARC on purpose is listed in
// README-opendmarc.md beside this file.

// Warning is something in a configuration file that dmarcd accepts but
// does not do as OpenDMARC would: a key it ignores (and why), a value it
// reads differently, or a difference worth knowing before switching.
type Warning struct {
	// File is the configuration file, or the data file (IgnoreHosts,
	// DomainWhitelistFile) the warning is about.
	File string
	// Line is the 1-based line in File, 0 when the warning is about the
	// file as a whole.
	Line int
	// Key is the opendmarc.conf key as written in the file, "" when the
	// warning is about the file as a whole.
	Key string
	// Message says what dmarcd does instead, and why.
	Message string
}

// String formats w as "file:line: Key: message", leaving out what is
// unknown.
func (w Warning) String() string {
	var b strings.Builder
	if w.File != "" {
		b.WriteString(w.File)
		if w.Line > 0 {
			b.WriteString(":" + strconv.Itoa(w.Line))
		}
		b.WriteString(": ")
	}
	if w.Key != "" {
		b.WriteString(w.Key + ": ")
	}
	b.WriteString(w.Message)
	return b.String()
}

// LoadOpenDMARC reads the opendmarc.conf file at path; see ParseOpenDMARC.
func LoadOpenDMARC(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return ParseOpenDMARC(path, data)
}

// ParseOpenDMARC converts an opendmarc.conf document, as OpenDMARC 1.4
// (and the keys added to it in 2026) reads it, to a Config. name is used in
// messages; data files the document names (IgnoreHosts,
// DomainWhitelistFile) are read from the file system, relative paths
// against BaseDirectory.
//
// Every key OpenDMARC knows is either mapped to dmarcd's equivalent or
// accepted with a Warning saying why it does nothing here; unknown keys
// are warnings too. A value OpenDMARC would refuse, or one dmarcd cannot
// honour safely, is an *Error (in Errors, as Parse returns) with the file,
// line and OpenDMARC key. Warnings are returned in file order, also along
// with errors.
//
// Keys the file leaves out take OpenDMARC's defaults, not dmarcd's: spec
// rfc7489 (unless the dmarcd-only key DMARCSpec says "rfc9989"), a relaxed
// listener unless RejectFailures, quarantined mail delivered unless
// HoldQuarantinedMessages, mail without From accepted unless
// RequiredHeaders or RequiredFrom, authenticated clients evaluated unless
// IgnoreAuthenticatedClients, no SPF check of our own unless
// SPFSelfValidate. README-opendmarc.md lists where dmarcd departs from
// OpenDMARC on purpose.
func ParseOpenDMARC(name string, data []byte) (*Config, []Warning, error) {
	return parseOpenDMARC(name, data, os.ReadFile)
}

// odType is the type of an opendmarc.conf value, as config.c checks it.
type odType uint8

const (
	odString odType = iota
	odBool
	odInt
)

// odKey is one key OpenDMARC knows.
type odKey struct {
	name  string // as opendmarc.conf(5) spells it
	typ   odType
	apply func(cv *odConverter, e *odEntry)
}

// odKeys are the keys of OpenDMARC 1.4 (opendmarc-config.h), those added
// in 2026 (IgnoreMailTo, NoReportsList, RejectString, RequiredFrom) and
// dmarcd's own DMARCSpec, in the order they are applied: keys that others
// depend on come first.
var odKeys = []odKey{
	{"BaseDirectory", odString, (*odConverter).baseDirectory},
	{"DMARCSpec", odString, (*odConverter).dmarcSpec},
	{"AuthservID", odString, (*odConverter).authservID},
	{"TrustedAuthservIDs", odString, (*odConverter).trustedAuthservIDs},
	{"AuthservIDWithJobID", odBool, func(cv *odConverter, e *odEntry) {
		cv.c.AuthservIDWithJobID = e.b
		cv.set(e, "authserv_id_with_job_id")
	}},
	{"UMask", odInt, (*odConverter).umask},
	{"Socket", odString, (*odConverter).socket},
	{"RejectFailures", odBool, nil}, // applied by socket
	{"UserID", odString, func(cv *odConverter, e *odEntry) {
		cv.c.User = e.value
		cv.set(e, "user")
	}},
	{"PidFile", odString, func(cv *odConverter, e *odEntry) { cv.path(e, &cv.c.PIDFile, "pid_file") }},
	{"PublicSuffixList", odString, (*odConverter).publicSuffixList},
	{"HistoryFile", odString, func(cv *odConverter, e *odEntry) { cv.path(e, &cv.c.HistoryFile, "history_file") }},
	{"RecordAllMessages", odBool, func(cv *odConverter, e *odEntry) {
		cv.c.RecordAllMessages = e.b
		cv.set(e, "record_all_messages")
	}},
	{"SoftwareHeader", odBool, func(cv *odConverter, e *odEntry) {
		cv.c.SoftwareHeader = e.b
		cv.set(e, "software_header")
	}},
	{"CopyFailuresTo", odString, func(cv *odConverter, e *odEntry) {
		cv.c.CopyFailuresTo = strings.TrimSuffix(strings.TrimPrefix(e.value, "<"), ">")
		cv.set(e, "copy_failures_to")
	}},
	{"HoldQuarantinedMessages", odBool, (*odConverter).holdQuarantined},
	{"RejectMultiValueFrom", odBool, func(cv *odConverter, e *odEntry) {
		if e.b {
			cv.c.Policy.MultipleFrom = MultipleFromReject
		}
		cv.set(e, "policy.multiple_from")
	}},
	{"RequiredHeaders", odBool, func(cv *odConverter, e *odEntry) {
		cv.c.Policy.RequiredHeaders = e.b
		if e.b {
			cv.c.Policy.MissingFrom = MissingFromReject
			cv.set(e, "policy.missing_from")
		}
		cv.set(e, "policy.required_headers")
	}},
	{"RequiredFrom", odBool, func(cv *odConverter, e *odEntry) {
		if e.b {
			cv.c.Policy.MissingFrom = MissingFromReject
			cv.set(e, "policy.missing_from")
		}
	}},
	{"RejectString", odString, (*odConverter).rejectString},
	{"IgnoreHosts", odString, (*odConverter).ignoreHosts},
	{"IgnoreAuthenticatedClients", odBool, func(cv *odConverter, e *odEntry) {
		cv.c.Ignore.Authenticated = e.b
		cv.set(e, "ignore.authenticated")
	}},
	{"IgnoreMailFrom", odString, func(cv *odConverter, e *odEntry) {
		cv.c.Ignore.FromDomains = cv.list(e)
		cv.set(e, "ignore.from_domains")
	}},
	{"IgnoreMailTo", odString, (*odConverter).ignoreMailTo},
	{"SPFIgnoreResults", odBool, (*odConverter).spf},
	{"SPFSelfValidate", odBool, nil}, // applied by spf
	{"DNSTimeout", odInt, (*odConverter).dnsTimeout},
	{"DomainWhitelist", odString, (*odConverter).domainWhitelist},
	{"DomainWhitelistFile", odString, nil}, // applied by domainWhitelist
	{"DomainWhitelistSize", odInt, warnOnly("ignored: dmarcd's list of trusted ARC sealers has no fixed capacity")},
	{"Syslog", odBool, func(cv *odConverter, e *odEntry) {
		cv.c.Log.Syslog = e.b
		cv.set(e, "log.syslog")
	}},
	{"SyslogFacility", odString, func(cv *odConverter, e *odEntry) {
		cv.c.Log.SyslogFacility = strings.ToLower(e.value)
		cv.set(e, "log.syslog_facility")
	}},

	{"AutoRestart", odBool, warnOnly(underSystemd + "; use Restart=on-failure in the unit")},
	{"AutoRestartCount", odInt, warnOnly(underSystemd + "; use StartLimitBurst= in the unit")},
	{"AutoRestartRate", odString, warnOnly(underSystemd + "; use StartLimitIntervalSec= and StartLimitBurst= in the unit")},
	{"Background", odBool, warnOnly("ignored: dmarcd never forks: it runs in the foreground under systemd (Type=notify) or another supervisor")},
	{"EnableCoredumps", odBool, warnOnly(underSystemd + "; core dumps follow LimitCORE= and systemd-coredump")},
	{"MilterDebug", odInt, warnOnly("ignored: dmarcd has no libmilter; set log.level = \"debug\" for more detail")},
	{"ChangeRootDirectory", odString, warnOnly(underSystemd + "; use RootDirectory= (or a chrooted unit) instead")},
	{"FailureReports", odBool, (*odConverter).failureReports},
	{"FailureReportsBcc", odString, func(cv *odConverter, e *odEntry) {
		cv.c.FailureReports.Bcc = strings.TrimSuffix(strings.TrimPrefix(e.value, "<"), ">")
		cv.set(e, "failure_reports.bcc")
	}},
	{"FailureReportsOnNone", odBool, func(cv *odConverter, e *odEntry) {
		cv.c.FailureReports.OnPolicyNone = e.b
		cv.set(e, "failure_reports.on_policy_none")
	}},
	{"FailureReportsSentBy", odString, func(cv *odConverter, e *odEntry) {
		cv.c.FailureReports.FromAddress = strings.TrimSuffix(strings.TrimPrefix(e.value, "<"), ">")
		cv.set(e, "failure_reports.from_address")
	}},
	{"ReportCommand", odString, warnOnly("ignored: dmarcd sends failure reports itself, through reports.relay, without a command")},
	{"NoReportsList", odString, (*odConverter).noReportsList},
	{"TestDNSData", odString, warnOnly("ignored: it is OpenDMARC's test harness; point dns.nameservers at a test DNS server instead")},
}

const (
	underSystemd = "ignored: systemd does this for dmarcd"
)

// warnOnly returns an apply function that warns with msg.
func warnOnly(msg string) func(*odConverter, *odEntry) {
	return func(cv *odConverter, e *odEntry) { cv.warn(e, msg) }
}

// odKeyIndex finds keys by their lower-case name.
var odKeyIndex = map[string]*odKey{}

func init() {
	for i := range odKeys {
		odKeyIndex[strings.ToLower(odKeys[i].name)] = &odKeys[i]
	}
}

// odEntry is one "Key value" line.
type odEntry struct {
	key   string // as written
	value string
	line  int
	def   *odKey
	b     bool // the value of a boolean
	n     int  // the value of an integer
}

// odConverter builds a Config from the entries of one file.
type odConverter struct {
	name     string
	readFile func(string) ([]byte, error)
	c        *Config
	entries  map[string]*odEntry // by lower-case key
	baseDir  string
	warnings []Warning
	errs     Errors
	order    []int               // for each error, the line of its key in the main file
	worder   []int               // the same for warnings
	origin   map[string]*odEntry // dmarcd key path -> the entry that set it
}

func parseOpenDMARC(name string, data []byte, readFile func(string) ([]byte, error)) (*Config, []Warning, error) {
	cv := &odConverter{
		name:     name,
		readFile: readFile,
		c:        openDMARCDefaults(),
		entries:  map[string]*odEntry{},
		origin:   map[string]*odEntry{},
	}
	cv.read(data)
	for i := range odKeys {
		k := &odKeys[i]
		if e := cv.entry(k.name); e != nil && k.apply != nil {
			k.apply(cv, e)
		}
	}
	cv.finish()
	if err := cv.c.Validate(); err != nil {
		for _, e := range err.(Errors) {
			cv.relocate(e)
		}
	}
	ws := sortByLine(cv.warnings, cv.worder)
	if len(cv.errs) > 0 {
		return nil, ws, Errors(sortByLine(cv.errs, cv.order))
	}
	return cv.c, ws, nil
}

// sortByLine sorts xs stably by the main-file line recorded for each.
func sortByLine[T any](xs []T, lines []int) []T {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return lines[a] - lines[b] })
	out := make([]T, len(xs))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

// openDMARCDefaults returns Default() with OpenDMARC's defaults where the
// two differ and dmarcd has no reason to depart from OpenDMARC.
func openDMARCDefaults() *Config {
	c := Default()
	c.Spec = dmarc.RFC7489
	c.Listeners[0].Mode = ModeRelaxed
	c.Policy.Quarantine = QuarantineHeader
	c.Policy.MissingFrom = MissingFromAccept
	c.Ignore.Authenticated = false
	c.SPF.SelfCheck = false
	// OpenDMARC reports on p=none domains only with FailureReportsOnNone.
	c.FailureReports.OnPolicyNone = false
	return c
}

// read splits the document into entries as config.c does, checks the
// type of each value and keeps the last entry of each key.
func (cv *odConverter) read(data []byte) {
	src := strings.TrimPrefix(string(data), "\uFEFF")
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimLeft(strings.TrimRight(line, "\r"), " \t")
		if line == "" {
			continue
		}
		key, value := line, ""
		if j := strings.IndexAny(line, " \t"); j >= 0 {
			key, value = line[:j], strings.Trim(line[j+1:], " \t")
		}
		def := odKeyIndex[strings.ToLower(key)]
		if def == nil {
			cv.warnings = append(cv.warnings, Warning{File: cv.name, Line: n, Key: key,
				Message: "unknown key, ignored" + didYouMean(key, odKeyNames())})
			cv.worder = append(cv.worder, n)
			continue
		}
		e := &odEntry{key: key, value: value, line: n, def: def}
		if value == "" {
			cv.fail(e, errors.New("missing value"))
			continue
		}
		if !utf8.ValidString(value) {
			cv.fail(e, fmt.Errorf("%q is not valid UTF-8, which dmarcd.toml requires", value))
			continue
		}
		switch def.typ {
		case odBool:
			b, err := parseODBool(value)
			if err != nil {
				cv.fail(e, err)
				continue
			}
			e.b = b
		case odInt:
			v, err := parseODInt(value)
			if err != nil {
				cv.fail(e, err)
				continue
			}
			e.n = v
		}
		if prev := cv.entry(def.name); prev != nil {
			cv.warn(e, fmt.Sprintf("given again (first at line %d); the last one counts, as in OpenDMARC", prev.line))
		}
		cv.entries[strings.ToLower(def.name)] = e
	}
}

// entry returns the entry of the key named name, nil if the file has none.
func (cv *odConverter) entry(name string) *odEntry { return cv.entries[strings.ToLower(name)] }

func odKeyNames() []string {
	names := make([]string, len(odKeys))
	for i, k := range odKeys {
		names[i] = k.name
	}
	return names
}

// parseODBool reads a boolean as config.c does: by its first byte.
func parseODBool(s string) (bool, error) {
	switch s[0] {
	case 't', 'T', 'y', 'Y', '1':
		return true, nil
	case 'f', 'F', 'n', 'N', '0':
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want true, false, yes, no, 1 or 0)", s)
}

// parseODInt reads an integer as strtol(s, &end, 0) with nothing after it:
// decimal, octal with a leading 0, hexadecimal with 0x.
func parseODInt(s string) (int, error) {
	digits, neg := s, false
	if digits[0] == '+' || digits[0] == '-' {
		neg, digits = digits[0] == '-', digits[1:]
	}
	base := 10
	switch {
	case len(digits) > 2 && (digits[:2] == "0x" || digits[:2] == "0X"):
		base, digits = 16, digits[2:]
	case len(digits) > 1 && digits[0] == '0':
		base, digits = 8, digits[1:]
	}
	n, err := strconv.ParseInt(digits, base, 32)
	if err != nil || strings.ContainsAny(digits, "+-_") {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if neg {
		n = -n
	}
	return int(n), nil
}

// fail records a problem with entry e of the main file.
func (cv *odConverter) fail(e *odEntry, err error) {
	cv.errs = append(cv.errs, &Error{File: cv.name, Line: e.line, Key: e.key, Err: err})
	cv.order = append(cv.order, e.line)
}

// failIn records a problem at line n of the data file named by entry e.
func (cv *odConverter) failIn(e *odEntry, file string, n int, err error) {
	cv.errs = append(cv.errs, &Error{File: file, Line: n, Key: e.key, Err: err})
	cv.order = append(cv.order, e.line)
}

// warn records a warning about entry e.
func (cv *odConverter) warn(e *odEntry, msg string) {
	cv.warnings = append(cv.warnings, Warning{File: cv.name, Line: e.line, Key: e.key, Message: msg})
	cv.worder = append(cv.worder, e.line)
}

// warnIn records a warning about line n of the data file named by e.
func (cv *odConverter) warnIn(e *odEntry, file string, n int, msg string) {
	cv.warnings = append(cv.warnings, Warning{File: file, Line: n, Key: e.key, Message: msg})
	cv.worder = append(cv.worder, e.line)
}

// set records that entry e set the dmarcd key path p, so that problems
// Validate finds there are reported at e.
func (cv *odConverter) set(e *odEntry, p string) { cv.origin[p] = e }

// relocate reports a problem Validate found in the converted Config at the
// entry that set its key.
func (cv *odConverter) relocate(e *Error) {
	line := 0
	for p := e.Key; p != ""; p = parentKey(p) {
		if src, ok := cv.origin[p]; ok {
			e.File, e.Line, e.Key, line = cv.name, src.line, src.key, src.line
			break
		}
	}
	if line == 0 {
		e.File = cv.name
	}
	cv.errs = append(cv.errs, e)
	cv.order = append(cv.order, line)
}

// resolve returns the absolute path of a file named by entry e: relative
// paths are taken from BaseDirectory, as OpenDMARC changes to it before
// reading them.
func (cv *odConverter) resolve(e *odEntry) (string, bool) {
	p := e.value
	if path.IsAbs(p) {
		return path.Clean(p), true
	}
	if cv.baseDir != "" {
		return path.Join(cv.baseDir, p), true
	}
	cv.fail(e, fmt.Errorf("%q is a relative path, which OpenDMARC reads from its working directory: write an absolute path, or set BaseDirectory", p))
	return "", false
}

// path sets *dst to the path entry e names.
func (cv *odConverter) path(e *odEntry, dst *string, key string) {
	if p, ok := cv.resolve(e); ok {
		*dst = p
		cv.set(e, key)
	}
}

// list splits a list value. OpenDMARC splits at commas and keeps the first
// word of each item; dmarcd takes every word, and says so.
func (cv *odConverter) list(e *odEntry) []string {
	var out []string
	spaced := false
	for _, item := range strings.Split(e.value, ",") {
		words := strings.Fields(item)
		if len(words) > 1 {
			spaced = true
		}
		out = append(out, words...)
	}
	if spaced {
		cv.warn(e, "items separated by spaces: OpenDMARC reads only the first word between two commas, dmarcd reads them all; separate them with commas")
	}
	return out
}

func (cv *odConverter) baseDirectory(e *odEntry) {
	if !path.IsAbs(e.value) {
		cv.fail(e, fmt.Errorf("%q is not an absolute path", e.value))
		return
	}
	cv.baseDir = path.Clean(e.value)
	cv.warn(e, "relative paths in this file are read from it, as OpenDMARC does; dmarcd itself does not change directory (systemd's WorkingDirectory= does, if needed)")
}

func (cv *odConverter) dmarcSpec(e *odEntry) {
	s, err := dmarc.ParseSpec(e.value)
	if err != nil {
		cv.fail(e, err)
		return
	}
	cv.c.Spec = s
	cv.set(e, "spec")
}

func (cv *odConverter) authservID(e *odEntry) {
	cv.c.AuthservID = e.value
	cv.set(e, "authserv_id")
}

// trustedAuthservIDs maps the list. OpenDMARC trusts its own AuthservID
// in addition to the list; dmarcd trusts its own only if listed, so it is
// added to keep the behaviour.
func (cv *odConverter) trustedAuthservIDs(e *odEntry) {
	ids := cv.list(e)
	cv.c.TrustedAuthservIDs = ids
	cv.set(e, "trusted_authserv_ids")
	own := cv.c.AuthservID
	if own == "" {
		cv.warn(e, "OpenDMARC also reads Authentication-Results carrying its own authserv-id (here the MTA's name); dmarcd reads only the ids listed and removes fields with its own as forged: list the MTA's name too if OpenDKIM writes its results under it")
		return
	}
	if slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, own) }) {
		return
	}
	cv.c.TrustedAuthservIDs = append(ids, own)
	cv.warn(e, fmt.Sprintf("AuthservID %s added to the list: OpenDMARC also trusts its own authserv-id, and dmarcd only the ids listed", own))
}

func (cv *odConverter) umask(e *odEntry) {
	if e.n < 0 || e.n > 0o777 {
		cv.fail(e, fmt.Errorf("%s is not a file mode mask (0 to 0777)", e.value))
		return
	}
	if e.value[0] != '0' && e.n >= 8 {
		cv.warn(e, fmt.Sprintf("%s has no leading 0, so it is decimal and means %04o, as OpenDMARC reads it; write 0%s if you meant octal", e.value, e.n, e.value))
	}
	cv.c.Umask = MakeUmask(fs.FileMode(e.n))
	cv.set(e, "umask")
}

// socket sets the one listener: the Socket, the mode RejectFailures asks
// for and, for a Unix socket, the mode UMask gives it.
func (cv *odConverter) socket(e *odEntry) {
	l := &cv.c.Listeners[0]
	if rf := cv.entry("rejectfailures"); rf != nil && rf.b {
		l.Mode = ModeStrict
		cv.set(rf, "listener[0].mode")
	}
	if e == nil {
		return
	}
	s, err := ParseSocket(e.value)
	if err != nil {
		cv.fail(e, err)
		return
	}
	l.Address = s
	cv.set(e, "listener[0].address")
	if m, ok := cv.c.Umask.Mask(); ok && s.IsUnix() {
		l.SocketMode = FileMode(0o777 &^ m)
		cv.set(cv.entry("umask"), "listener[0].socket_mode")
	}
}

func (cv *odConverter) holdQuarantined(e *odEntry) {
	if e.b {
		cv.c.Policy.Quarantine = QuarantineHold
	}
	cv.set(e, "policy.quarantine")
}

// rejectString turns OpenDMARC's printf format, with at most one %s for
// the From domain, into a reply template with {domain}.
func (cv *odConverter) rejectString(e *odEntry) {
	text := e.value
	switch n := strings.Count(text, "%s"); {
	case n > 1:
		cv.fail(e, fmt.Errorf("%q has more than one %%s", text))
		return
	case n == 1:
		var b strings.Builder
		for i := 0; i < len(text); i++ {
			if text[i] != '%' {
				b.WriteByte(text[i])
				continue
			}
			if i+1 < len(text) && (text[i+1] == 's' || text[i+1] == '%') {
				if text[i+1] == 's' {
					b.WriteString("{domain}")
				} else {
					b.WriteByte('%')
				}
				i++
				continue
			}
			cv.fail(e, fmt.Errorf("%q: only %%s (the From domain) and %%%% may follow %%", text))
			return
		}
		text = b.String()
	}
	cv.c.Policy.RejectReply = "550 5.7.1 " + text
	cv.set(e, "policy.reject_reply")
}

func (cv *odConverter) ignoreMailTo(e *odEntry) {
	cv.c.Ignore.Recipients = cv.list(e)
	cv.set(e, "ignore.recipients")
	cv.warn(e, "mapped to ignore.recipients, which passes messages whose envelope recipients are all listed without evaluating them at all; OpenDMARC evaluated them (and could reject them) and only left messages with a listed To: address out of the history file")
}

func (cv *odConverter) spf(e *odEntry) {
	if e != nil {
		cv.c.SPF.UseUpstream = !e.b
		cv.set(e, "spf.use_upstream")
	}
	sv := cv.entry("spfselfvalidate")
	if sv != nil {
		cv.c.SPF.SelfCheck = sv.b
		cv.set(sv, "spf.self_check")
	}
	if e != nil && !cv.c.SPF.UseUpstream && !cv.c.SPF.SelfCheck {
		cv.warn(e, "and SPFSelfValidate is off: no SPF result is used at all, and DMARC rests on DKIM alone, as in OpenDMARC")
	}
}

func (cv *odConverter) dnsTimeout(e *odEntry) {
	switch budget := cv.c.Milter.DNSBudget; {
	case e.n < 0:
		cv.fail(e, fmt.Errorf("%d is negative", e.n))
	case e.n == 0:
		cv.warn(e, fmt.Sprintf("0 (wait forever) is not possible: dns.timeout stays %s, and milter.dns_budget (%s) bounds all DNS work for a message", cv.c.DNS.Timeout, budget))
	case time.Duration(e.n)*time.Second > budget.Duration():
		cv.c.DNS.Timeout = budget
		cv.set(e, "dns.timeout")
		cv.warn(e, fmt.Sprintf("%ds is longer than milter.dns_budget, which bounds all DNS work for a message: dns.timeout is %s", e.n, budget))
	default:
		cv.c.DNS.Timeout = Duration(time.Duration(e.n) * time.Second)
		cv.set(e, "dns.timeout")
	}
}

func (cv *odConverter) publicSuffixList(e *odEntry) {
	cv.path(e, &cv.c.PublicSuffixList, "public_suffix_list")
	if cv.c.Spec == dmarc.RFC9989 {
		cv.warn(e, "unused with DMARCSpec rfc9989, which finds organizational domains in DNS")
	}
}

// domainWhitelist merges DomainWhitelist and DomainWhitelistFile into
// arc.trusted_sealers, without duplicates.
func (cv *odConverter) domainWhitelist(e *odEntry) {
	var sealers []string
	add := func(d string) {
		d = strings.ToLower(d)
		if !slices.Contains(sealers, d) {
			sealers = append(sealers, d)
		}
	}
	if e != nil {
		for _, d := range cv.list(e) {
			add(d)
		}
		cv.set(e, "arc.trusted_sealers")
	}
	if fe := cv.entry("domainwhitelistfile"); fe != nil {
		cv.readList(fe, func(file string, n int, word string) {
			if _, err := dmarc.NormalizeDomain(word); err != nil {
				cv.failIn(fe, file, n, err)
				return
			}
			add(word)
		})
		if e == nil {
			cv.set(fe, "arc.trusted_sealers")
		}
	}
	cv.c.ARC.TrustedSealers = sealers
}

// noReportsList reads the file of destinations no report goes to: one
// domain (covering its subdomains) or address a line.
func (cv *odConverter) noReportsList(e *odEntry) {
	var list []string
	ok := cv.readList(e, func(file string, n int, word string) {
		p, err := normalizeDestinationPattern(strings.TrimPrefix(word, "mailto:"))
		if err != nil {
			cv.failIn(e, file, n, err)
			return
		}
		if !slices.Contains(list, p) {
			list = append(list, p)
		}
	})
	if ok {
		cv.c.Reports.Suppress = list
		cv.set(e, "reports.suppress")
	}
}

// readList reads a data file as dmarcf_loadlist does: one entry a line,
// its first word, "#" starting a comment. It calls fn with each entry and
// its line.
func (cv *odConverter) readList(e *odEntry, fn func(file string, line int, word string)) bool {
	file, ok := cv.resolve(e)
	if !ok {
		return false
	}
	data, err := cv.readFile(file)
	if err != nil {
		cv.fail(e, fmt.Errorf("cannot read the list: %w", err))
		return false
	}
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		words := strings.Fields(line)
		if len(words) == 0 {
			continue
		}
		if len(words) > 1 {
			cv.warnIn(e, file, i+1, fmt.Sprintf("only the first word, %q, is read, as in OpenDMARC", words[0]))
		}
		fn(file, i+1, words[0])
	}
	return true
}

// failureReports applies FailureReports. OpenDMARC sends from the user
// and host it runs as when FailureReportsSentBy is absent; dmarcd wants an
// address it can sign and align, so failure reports stay off until one is
// given, with a warning that says so.
func (cv *odConverter) failureReports(e *odEntry) {
	if !e.b {
		return
	}
	if cv.entry("failurereportssentby") == nil {
		cv.warn(e, "not enabled: dmarcd sends failure reports from failure_reports.from_address (FailureReportsSentBy), which is not set; set it and failure_reports.enabled = true")
		return
	}
	cv.c.FailureReports.Enabled = true
	cv.set(e, "failure_reports.enabled")
}

// finish applies the keys whose effect depends on several entries even
// when the key that carries them is absent.
func (cv *odConverter) finish() {
	if cv.entry("socket") == nil {
		cv.socket(nil)
		cv.warnings = append(cv.warnings, Warning{File: cv.name, Key: "Socket",
			Message: fmt.Sprintf("not set (OpenDMARC needs it, or -p): dmarcd listens on %s; dmarcd serve -listen chooses another", cv.c.Listeners[0].Address)})
		cv.worder = append(cv.worder, 0)
	}
	if cv.entry("spfignoreresults") == nil {
		cv.spf(nil)
	}
	if cv.entry("domainwhitelist") == nil && cv.entry("domainwhitelistfile") != nil {
		cv.domainWhitelist(nil)
	}
}
