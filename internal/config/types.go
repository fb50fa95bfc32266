package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in the configuration as a string with
// a unit: "500ms", "10s", "5m", "1h", "1h30m", and also "1d" (24 hours,
// not a calendar day). A bare number is refused: "300" could mean seconds
// or milliseconds, and the file should say which.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String returns d in the shortest form ParseDuration reads back: "10m"
// rather than time.Duration's "10m0s", and whole days from two days up
// as days ("90d" rather than "2160h").
func (d Duration) String() string {
	if day := Duration(24 * time.Hour); d >= 2*day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler with String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration reads a duration as time.ParseDuration does, plus a
// leading whole number of days: "1d", "2d12h". A lone "0" is zero.
func ParseDuration(s string) (Duration, error) {
	bad := func() (Duration, error) {
		return 0, fmt.Errorf("invalid duration %q: want a number and a unit (ms, s, m, h, d) such as \"10s\", \"5m\" or \"1d\"", s)
	}
	rest := s
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 && isDigits(s[:i]) {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > int64(maxDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("invalid duration %q: too long", s)
		}
		days, rest = n, s[i+1:]
		if rest == "" {
			return Duration(time.Duration(days) * 24 * time.Hour), nil
		}
		if rest[0] == '-' || rest[0] == '+' {
			return bad()
		}
	}
	v, err := time.ParseDuration(rest)
	if err != nil || strings.ContainsAny(rest, " \t") {
		return bad()
	}
	total := time.Duration(days)*24*time.Hour + v
	if total < v { // overflow
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	}
	return Duration(total), nil
}

const maxDuration = time.Duration(1<<63 - 1)

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FileMode is a permission mode written as an octal string, "0660". Only
// the permission bits (0777) are allowed.
type FileMode fs.FileMode

// Perm returns m as an fs.FileMode.
func (m FileMode) Perm() fs.FileMode { return fs.FileMode(m) }

// String returns m as four octal digits, "0660".
func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// MarshalText implements encoding.TextMarshaler with String.
func (m FileMode) MarshalText() ([]byte, error) {
	if m&^0o777 != 0 {
		return nil, fmt.Errorf("file mode %o has bits beyond 0777", uint32(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It reads octal digits
// with an optional "0o" prefix: "0660", "660", "0o660".
func (m *FileMode) UnmarshalText(b []byte) error {
	s := string(b)
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || !isDigits(digits) {
		return fmt.Errorf("invalid file mode %q: want an octal string such as \"0660\"", s)
	}
	if v > 0o777 {
		return fmt.Errorf("invalid file mode %q: only permission bits (up to 0777) are allowed", s)
	}
	*m = FileMode(v)
	return nil
}

// enumNames lists the words of an enumeration, indexed by value.
type enumNames struct {
	what  string // "listener mode", for messages
	words []string
}

func (e enumNames) name(v uint8) string {
	if int(v) < len(e.words) {
		return e.words[v]
	}
	return fmt.Sprintf("%s(%d)", strings.ReplaceAll(e.what, " ", "_"), v)
}

func (e enumNames) marshal(v uint8) ([]byte, error) {
	if int(v) >= len(e.words) {
		return nil, fmt.Errorf("invalid %s %d", e.what, v)
	}
	return []byte(e.words[v]), nil
}

func (e enumNames) parse(b []byte) (uint8, error) {
	s := string(b)
	for i, w := range e.words {
		if s == w {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want %s)%s", e.what, s, e.choices(), didYouMean(s, e.words))
}

func (e enumNames) valid(v uint8) bool { return int(v) < len(e.words) }

// choices returns "a, b or c".
func (e enumNames) choices() string {
	q := make([]string, len(e.words))
	for i, w := range e.words {
		q[i] = strconv.Quote(w)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// ListenerMode is what a listener does with the messages it receives.
type ListenerMode uint8

// The listener modes. The zero value is ModeStrict.
const (
	// ModeStrict evaluates DMARC and enforces the outcome as [policy] says.
	ModeStrict ListenerMode = iota
	// ModeRelaxed evaluates, adds headers and records report data, but
	// never rejects or quarantines: a dry run of ModeStrict.
	ModeRelaxed
	// ModeDisable accepts every message without evaluating it.
	ModeDisable
)

var listenerModes = enumNames{"listener mode", []string{"strict", "relaxed", "disable"}}

// String returns "strict", "relaxed" or "disable".
func (m ListenerMode) String() string { return listenerModes.name(uint8(m)) }

// MarshalText implements encoding.TextMarshaler.
func (m ListenerMode) MarshalText() ([]byte, error) { return listenerModes.marshal(uint8(m)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *ListenerMode) UnmarshalText(b []byte) error {
	v, err := listenerModes.parse(b)
	if err == nil {
		*m = ListenerMode(v)
	}
	return err
}

// RejectAction is what a DMARC failure under p=reject does.
type RejectAction uint8

// The reject actions. The zero value is RejectActionReject.
const (
	// RejectActionReject rejects the message with policy.reject_reply.
	RejectActionReject RejectAction = iota
	// RejectActionQuarantine treats the failure as p=quarantine would be.
	RejectActionQuarantine
	// RejectActionAccept accepts the message; only the header tells.
	RejectActionAccept
)

var rejectActions = enumNames{"reject action", []string{"reject", "quarantine", "accept"}}

// String returns "reject", "quarantine" or "accept".
func (a RejectAction) String() string { return rejectActions.name(uint8(a)) }

// MarshalText implements encoding.TextMarshaler.
func (a RejectAction) MarshalText() ([]byte, error) { return rejectActions.marshal(uint8(a)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *RejectAction) UnmarshalText(b []byte) error {
	v, err := rejectActions.parse(b)
	if err == nil {
		*a = RejectAction(v)
	}
	return err
}

// QuarantineAction is what a DMARC failure under p=quarantine does.
type QuarantineAction uint8

// The quarantine actions. The zero value is QuarantineHold.
const (
	// QuarantineHold asks the MTA to quarantine the message (milter
	// SMFIR_QUARANTINE: Postfix's hold queue).
	QuarantineHold QuarantineAction = iota
	// QuarantineHeader accepts the message; the Authentication-Results
	// header lets a later filter file it as spam.
	QuarantineHeader
)

var quarantineActions = enumNames{"quarantine action", []string{"hold", "header"}}

// String returns "hold" or "header".
func (a QuarantineAction) String() string { return quarantineActions.name(uint8(a)) }

// MarshalText implements encoding.TextMarshaler.
func (a QuarantineAction) MarshalText() ([]byte, error) { return quarantineActions.marshal(uint8(a)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *QuarantineAction) UnmarshalText(b []byte) error {
	v, err := quarantineActions.parse(b)
	if err == nil {
		*a = QuarantineAction(v)
	}
	return err
}

// TempErrorAction is what a DMARC temperror (DNS failure) does.
type TempErrorAction uint8

// The temperror actions. The zero value is TempErrorAccept.
const (
	// TempErrorAccept accepts the message with dmarc=temperror.
	TempErrorAccept TempErrorAction = iota
	// TempErrorTempFail answers policy.tempfail_reply so that the sender
	// retries later.
	TempErrorTempFail
)

var tempErrorActions = enumNames{"temperror action", []string{"accept", "tempfail"}}

// String returns "accept" or "tempfail".
func (a TempErrorAction) String() string { return tempErrorActions.name(uint8(a)) }

// MarshalText implements encoding.TextMarshaler.
func (a TempErrorAction) MarshalText() ([]byte, error) { return tempErrorActions.marshal(uint8(a)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *TempErrorAction) UnmarshalText(b []byte) error {
	v, err := tempErrorActions.parse(b)
	if err == nil {
		*a = TempErrorAction(v)
	}
	return err
}

// PermErrorAction is what a DMARC permerror (broken record) does.
type PermErrorAction uint8

// The permerror actions. The zero value is PermErrorAccept.
const (
	// PermErrorAccept accepts the message with dmarc=permerror.
	PermErrorAccept PermErrorAction = iota
	// PermErrorReject rejects it with policy.reject_reply.
	PermErrorReject
)

var permErrorActions = enumNames{"permerror action", []string{"accept", "reject"}}

// String returns "accept" or "reject".
func (a PermErrorAction) String() string { return permErrorActions.name(uint8(a)) }

// MarshalText implements encoding.TextMarshaler.
func (a PermErrorAction) MarshalText() ([]byte, error) { return permErrorActions.marshal(uint8(a)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *PermErrorAction) UnmarshalText(b []byte) error {
	v, err := permErrorActions.parse(b)
	if err == nil {
		*a = PermErrorAction(v)
	}
	return err
}

// MultipleFromAction is what happens to a message whose From header field
// holds several addresses.
type MultipleFromAction uint8

// The multiple-From actions. The zero value is MultipleFromStrictest.
const (
	// MultipleFromStrictest evaluates every From domain and applies the
	// strictest outcome.
	MultipleFromStrictest MultipleFromAction = iota
	// MultipleFromReject rejects the message unless all addresses share
	// one domain.
	MultipleFromReject
	// MultipleFromFirst evaluates the first address only.
	MultipleFromFirst
)

var multipleFromActions = enumNames{"multiple_from action", []string{"strictest", "reject", "first"}}

// String returns "strictest", "reject" or "first".
func (a MultipleFromAction) String() string { return multipleFromActions.name(uint8(a)) }

// MarshalText implements encoding.TextMarshaler.
func (a MultipleFromAction) MarshalText() ([]byte, error) {
	return multipleFromActions.marshal(uint8(a))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *MultipleFromAction) UnmarshalText(b []byte) error {
	v, err := multipleFromActions.parse(b)
	if err == nil {
		*a = MultipleFromAction(v)
	}
	return err
}

// MissingFromAction is what happens to a message without a usable From
// domain.
type MissingFromAction uint8

// The missing-From actions. The zero value is MissingFromReject.
const (
	// MissingFromReject rejects the message (RFC 5322 requires exactly
	// one From field).
	MissingFromReject MissingFromAction = iota
	// MissingFromAccept accepts it with dmarc=none.
	MissingFromAccept
)

var missingFromActions = enumNames{"missing_from action", []string{"reject", "accept"}}

// String returns "reject" or "accept".
func (a MissingFromAction) String() string { return missingFromActions.name(uint8(a)) }

// MarshalText implements encoding.TextMarshaler.
func (a MissingFromAction) MarshalText() ([]byte, error) { return missingFromActions.marshal(uint8(a)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *MissingFromAction) UnmarshalText(b []byte) error {
	v, err := missingFromActions.parse(b)
	if err == nil {
		*a = MissingFromAction(v)
	}
	return err
}

// MissingDKIMAction is what happens when a message carries a
// DKIM-Signature but no trusted Authentication-Results reported a dkim=
// result for it.
type MissingDKIMAction uint8

// The missing-DKIM-result actions. The zero value is MissingDKIMFail.
const (
	// MissingDKIMFail evaluates the message with the results at hand, so
	// the signature counts as not verified.
	MissingDKIMFail MissingDKIMAction = iota
	// MissingDKIMTempFail answers policy.tempfail_reply: the DKIM verifier
	// before us probably failed, and a retry may succeed.
	MissingDKIMTempFail
)

var missingDKIMActions = enumNames{"missing_dkim_result action", []string{"fail", "tempfail"}}

// String returns "fail" or "tempfail".
func (a MissingDKIMAction) String() string { return missingDKIMActions.name(uint8(a)) }

// MarshalText implements encoding.TextMarshaler.
func (a MissingDKIMAction) MarshalText() ([]byte, error) { return missingDKIMActions.marshal(uint8(a)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *MissingDKIMAction) UnmarshalText(b []byte) error {
	v, err := missingDKIMActions.parse(b)
	if err == nil {
		*a = MissingDKIMAction(v)
	}
	return err
}

// LogFormat is the shape of log lines.
type LogFormat uint8

// The log formats. The zero value is LogText.
const (
	// LogText writes slog's key=value text lines.
	LogText LogFormat = iota
	// LogJSON writes one JSON object per line.
	LogJSON
)

var logFormats = enumNames{"log format", []string{"text", "json"}}

// String returns "text" or "json".
func (f LogFormat) String() string { return logFormats.name(uint8(f)) }

// MarshalText implements encoding.TextMarshaler.
func (f LogFormat) MarshalText() ([]byte, error) { return logFormats.marshal(uint8(f)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *LogFormat) UnmarshalText(b []byte) error {
	v, err := logFormats.parse(b)
	if err == nil {
		*f = LogFormat(v)
	}
	return err
}

// errEmpty is returned for required values left empty.
var errEmpty = errors.New("must not be empty")

// Size is a number of bytes written in the configuration as a whole number
// and a unit: "512KiB", "32MiB", "1GiB" (powers of 1024, IEC), "500kB",
// "10MB", "1GB" (powers of 1000, SI) or "1500B". Units are case-sensitive,
// except that "KB" is read as "kB"; one space may come before the unit. A
// bare number is refused: "32" could mean bytes or megabytes.
type Size int64

// The binary units of Size.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

// sizeUnits are the units ParseSize reads, in the order String tries them.
var sizeUnits = []struct {
	name string
	n    Size
}{
	{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3},
	{"B", 1},
}

// Bytes returns s as a number of bytes.
func (s Size) Bytes() int64 { return int64(s) }

// String returns s in the unit that divides it exactly into the smallest
// number, binary units first on a tie: "32MiB", "10MB", "1500B".
// ParseSize reads it back.
func (s Size) String() string {
	best := sizeUnits[len(sizeUnits)-1]
	if s > 0 {
		for _, u := range sizeUnits {
			if s%u.n == 0 && s/u.n < s/best.n {
				best = u
			}
		}
	}
	return strconv.FormatInt(int64(s/best.n), 10) + best.name
}

// MarshalText implements encoding.TextMarshaler with String.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSize reads a whole number of bytes followed by a unit, as Size
// documents.
func ParseSize(s string) (Size, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	digits, unit := s[:i], strings.TrimPrefix(s[i:], " ")
	bad := func(why string) (Size, error) {
		return 0, fmt.Errorf("invalid size %q: %s", s, why)
	}
	if digits == "" {
		return bad(`want a whole number and a unit (B, KiB, MiB, GiB, kB, MB, GB) such as "32MiB"`)
	}
	if unit == "" {
		return bad(`a unit is required: "32MiB" (binary) or "32MB" (decimal), or "` + digits + `B" for bytes`)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return bad("too large")
	}
	if unit == "KB" {
		unit = "kB"
	}
	for _, u := range sizeUnits {
		if unit == u.name {
			if n > int64(maxSize/u.n) {
				return bad("too large")
			}
			return Size(n) * u.n, nil
		}
	}
	return bad(fmt.Sprintf("unknown unit %q (want B, KiB, MiB, GiB, kB, MB or GB)%s", unit,
		didYouMean(unit, []string{"B", "KiB", "MiB", "GiB", "kB", "MB", "GB"})))
}

const maxSize = Size(1<<63 - 1)

// Umask is an optional file mode creation mask, written as an octal
// string ("0027"), or "" to leave the process umask as dmarcd inherits it.
// The zero Umask is unset.
type Umask struct {
	mask FileMode
	set  bool
}

// MakeUmask returns the Umask m; only its permission bits count.
func MakeUmask(m fs.FileMode) Umask { return Umask{FileMode(m & 0o777), true} }

// Mask returns the mask and whether one is set.
func (u Umask) Mask() (fs.FileMode, bool) { return u.mask.Perm(), u.set }

// String returns "" when unset, else four octal digits: "0027".
func (u Umask) String() string {
	if !u.set {
		return ""
	}
	return u.mask.String()
}

// MarshalText implements encoding.TextMarshaler with String.
func (u Umask) MarshalText() ([]byte, error) {
	if !u.set {
		return nil, nil
	}
	return u.mask.MarshalText()
}

// UnmarshalText implements encoding.TextUnmarshaler: "" unsets the mask,
// octal digits set it as FileMode reads them.
func (u *Umask) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*u = Umask{}
		return nil
	}
	var m FileMode
	if err := m.UnmarshalText(b); err != nil {
		return fmt.Errorf("invalid umask %q: want an octal string such as \"0027\", or \"\"", b)
	}
	*u = Umask{m, true}
	return nil
}

// SyslogFacilities are the facility names log.syslog_facility accepts, as
// syslog.conf(5) spells them.
var SyslogFacilities = []string{
	"auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user", "uucp",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}
