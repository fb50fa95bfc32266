package config

import (
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/dmarcd/dmarcd/dmarc"
)

// Error is one problem with a configuration: where it is and what is
// wrong.
type Error struct {
	// File is the name given to Parse or the path given to Load; "" for
	// errors from Validate on a Config built in code.
	File string
	// Line is the 1-based line of Key in File, or 0 when unknown: for
	// Validate on a Config built in code, or when neither the key nor any
	// table above it appears in the file (a default that fails a check
	// against a value set elsewhere).
	Line int
	// Key is the path of the value: "milter.dns_budget",
	// "listener[1].address", "ignore.hosts[2]" (indices count from 0).
	// For TOML syntax errors it is the last key the parser read, without
	// array indices, or "".
	Key string
	// Err says what is wrong. It wraps ErrUnknownKey for unknown keys.
	Err error
}

// ErrUnknownKey is wrapped by the Err of an Error for a key the
// configuration does not have.
var ErrUnknownKey = errors.New("unknown key")

// unknownKeyError is the Err of an unknown key: ErrUnknownKey plus the
// suggestion.
type unknownKeyError struct{ hint string }

func (e *unknownKeyError) Error() string { return "unknown key" + e.hint }
func (e *unknownKeyError) Unwrap() error { return ErrUnknownKey }

// Error formats e as "file:line: key: problem", leaving out what is
// unknown; an unknown key reads `file:line: unknown key "key" (did you mean
// "other"?)`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	var uk *unknownKeyError
	if errors.As(e.Err, &uk) {
		if strings.Contains(e.Key, `"`) {
			fmt.Fprintf(&b, "unknown key '%s'%s", e.Key, uk.hint)
		} else {
			fmt.Fprintf(&b, "unknown key %q%s", e.Key, uk.hint)
		}
		return b.String()
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one configuration, in file order. Parse,
// Load and Validate return it (never empty) when something is wrong.
type Errors []*Error

// Error puts one problem per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// err returns es as an error, nil when empty.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// locate fills in the file and the lines of es and sorts them by line.
func (es Errors) locate(file string, ix lineIndex) {
	for _, e := range es {
		e.File = file
		if e.Line == 0 && e.Key != "" {
			e.Line = ix.find(e.Key)
		}
	}
	slices.SortStableFunc(es, func(a, b *Error) int { return a.Line - b.Line })
}

// Parse reads a dmarcd.toml document over Default() and validates the
// result. name is used in error messages only. Every problem is reported,
// as Errors, with its line: TOML syntax, unknown keys, values of the wrong
// type, values that do not parse and values that Validate refuses.
//
// Keys are case-sensitive, as TOML says. Tables replace nothing but the
// keys they set; an array ([[listener]], hosts = [...]) replaces the
// default array as a whole.
func Parse(name string, data []byte) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: name, Line: pe.Position.Line, Key: pe.LastKey,
				Err: fmt.Errorf("TOML syntax (column %d): %s%s", pe.Position.Col, pe.Message, syntaxHint(data, pe.Position.Line))}}
		}
		return nil, Errors{{File: name, Err: err}}
	}
	c := Default()
	d := &decoder{}
	d.table("", raw, reflect.ValueOf(c).Elem())
	errs := d.errs
	if verr := c.Validate(); verr != nil {
		// A value that did not decode kept its default, which may upset a
		// check: report the decoding problem only.
		for _, e := range verr.(Errors) {
			if !d.related(e.Key) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		errs.locate(name, indexLines(string(data)))
		return nil, errs
	}
	return c, nil
}

var (
	bareDuration = regexp.MustCompile(`=\s*[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d)\b`)
	bareOctal    = regexp.MustCompile(`=\s*0[0-7]+\s*(#.*)?$`)
)

// syntaxHint explains the TOML syntax errors that dmarcd.toml invites:
// durations and octal modes written without quotes.
func syntaxHint(data []byte, line int) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	switch l := lines[line-1]; {
	case bareDuration.MatchString(l):
		return ` (durations are strings: write "10m", with quotes)`
	case bareOctal.MatchString(l):
		return ` (modes are strings: write "0660", with quotes)`
	}
	return ""
}

// decoder copies a decoded TOML document (maps, slices and scalars from
// BurntSushi/toml) into a Config by its toml tags, recording every problem
// with its key path.
type decoder struct {
	errs  Errors
	bad   map[string]bool // key paths that failed to decode
	above map[string]bool // their ancestors
}

func (d *decoder) fail(key string, err error) {
	d.errs = append(d.errs, &Error{Key: key, Err: err})
	if d.bad == nil {
		d.bad, d.above = map[string]bool{}, map[string]bool{}
	}
	d.bad[key] = true
	for p := parentKey(key); p != "" && !d.above[p]; p = parentKey(p) {
		d.above[p] = true
	}
}

// related reports whether key is at, above or below a key that failed to
// decode.
func (d *decoder) related(key string) bool {
	if d.above[key] {
		return true
	}
	for p := key; p != ""; p = parentKey(p) {
		if d.bad[p] {
			return true
		}
	}
	return false
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// table decodes the keys of m into the struct v.
func (d *decoder) table(path string, m map[string]any, v reflect.Value) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kp := joinKey(path, k)
		i := fieldByKey(v.Type(), k)
		if i < 0 {
			d.fail(kp, &unknownKeyError{suggestKey(v.Type(), path, k)})
			continue
		}
		d.value(kp, m[k], v.Field(i))
	}
}

// value decodes x into v.
func (d *decoder) value(path string, x any, v reflect.Value) {
	t := v.Type()
	if c, ok := codecs[t]; ok {
		s, ok := x.(string)
		if !ok {
			d.typeError(path, c.expect, x)
			return
		}
		val, err := c.parse(s)
		if err != nil {
			d.fail(path, err)
			return
		}
		v.Set(reflect.ValueOf(val))
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		s, ok := x.(string)
		if !ok {
			d.typeError(path, expectText(t), x)
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.fail(path, err)
		}
		return
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			d.typeError(path, "a string", x)
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			d.typeError(path, "true or false", x)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		n, ok := x.(int64)
		if !ok {
			d.typeError(path, "an integer", x)
			return
		}
		v.SetInt(n)
	case reflect.Struct:
		m, ok := x.(map[string]any)
		if !ok {
			d.typeError(path, fmt.Sprintf("a table ([%s])", genericKey(path)), x)
			return
		}
		d.table(path, m, v)
	case reflect.Slice:
		var items []any
		switch xs := x.(type) {
		case []any:
			items = xs
		case []map[string]any:
			for _, m := range xs {
				items = append(items, m)
			}
		default:
			if t.Elem().Kind() == reflect.Struct && !isScalar(t.Elem()) {
				d.typeError(path, fmt.Sprintf("an array of tables ([[%s]])", genericKey(path)), x)
			} else {
				d.typeError(path, "an array", x)
			}
			return
		}
		if len(items) == 0 {
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		failed := len(d.errs)
		for i, item := range items {
			e := s.Index(i)
			if dv, ok := e.Addr().Interface().(interface{ setDefaults() }); ok {
				dv.setDefaults()
			}
			d.value(indexKey(path, i), item, e)
		}
		if len(d.errs) == failed {
			v.Set(s)
		}
	default:
		panic("config: no decoder for " + t.String())
	}
}

func (d *decoder) typeError(path, want string, x any) {
	d.fail(path, fmt.Errorf("expected %s, got %s", want, describe(x)))
}

// describe names the TOML type of a decoded value, with the value when
// short: `string "1024"`, "integer 600", "a table".
func describe(x any) string {
	switch v := x.(type) {
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return "string " + strconv.Quote(v)
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("%T", x)
}

// expectText describes the string a TextUnmarshaler type wants.
func expectText(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return `a duration string such as "10s", "5m" or "1h"`
	case reflect.TypeFor[Socket]():
		return `a socket string such as "inet:8893@127.0.0.1" or "unix:/run/dmarcd/dmarcd.sock"`
	case reflect.TypeFor[FileMode]():
		return `an octal string such as "0660"`
	case reflect.TypeFor[Umask]():
		return `an octal string such as "0027", or ""`
	case reflect.TypeFor[Size]():
		return `a size string such as "32MiB" or "10MB"`
	case reflect.TypeFor[Rate]():
		return `a rate string such as "100/1h", or "unlimited"`
	}
	if e, ok := enums[t]; ok {
		return "one of " + e.choices()
	}
	return "a string"
}

// enums maps the enumeration types to their words, for messages.
var enums = map[reflect.Type]enumNames{
	reflect.TypeFor[ListenerMode]():       listenerModes,
	reflect.TypeFor[RejectAction]():       rejectActions,
	reflect.TypeFor[QuarantineAction]():   quarantineActions,
	reflect.TypeFor[TempErrorAction]():    tempErrorActions,
	reflect.TypeFor[PermErrorAction]():    permErrorActions,
	reflect.TypeFor[MultipleFromAction](): multipleFromActions,
	reflect.TypeFor[MissingFromAction]():  missingFromActions,
	reflect.TypeFor[MissingDKIMAction]():  missingDKIMActions,
	reflect.TypeFor[LogFormat]():          logFormats,
	reflect.TypeFor[StoreDriver]():        storeDrivers,
	reflect.TypeFor[Cadence]():            cadences,
	reflect.TypeFor[ReportFormat]():       reportFormats,
	reflect.TypeFor[StartTLSMode]():       startTLSModes,
}

// codec reads and writes a type from another package as a TOML string.
type codec struct {
	expect string
	parse  func(string) (any, error)
	format func(any) string
}

// codecs are the field types whose text form is ours rather than their
// own: dmarc's have none, and netip.Prefix and slog.Level accept more
// (or other) text than a configuration should.
var codecs = map[reflect.Type]codec{
	reflect.TypeFor[dmarc.Spec](): {
		expect: `"rfc9989" or "rfc7489"`,
		parse:  func(s string) (any, error) { return dmarc.ParseSpec(s) },
		format: func(v any) string { return v.(dmarc.Spec).String() },
	},
	reflect.TypeFor[dmarc.Policy](): {
		expect: `"none", "quarantine" or "reject"`,
		parse:  func(s string) (any, error) { return parsePolicy(s) },
		format: func(v any) string { return v.(dmarc.Policy).String() },
	},
	reflect.TypeFor[netip.Prefix](): {
		expect: `an IP address or CIDR string such as "192.0.2.0/24"`,
		parse:  func(s string) (any, error) { return ParsePrefix(s) },
		format: func(v any) string { return formatPrefix(v.(netip.Prefix)) },
	},
	reflect.TypeFor[slog.Level](): {
		expect: `"debug", "info", "warn" or "error"`,
		parse:  func(s string) (any, error) { return parseLevel(s) },
		format: func(v any) string { return formatLevel(v.(slog.Level)) },
	},
}

var policyNames = enumNames{"policy", []string{"", "none", "quarantine", "reject"}}

func parsePolicy(s string) (dmarc.Policy, error) {
	if s != "" {
		for i, w := range policyNames.words {
			if s == w {
				return dmarc.Policy(i), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown policy %q (want \"none\", \"quarantine\" or \"reject\")%s",
		s, didYouMean(s, policyNames.words[1:]))
}

var levelNames = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func parseLevel(s string) (slog.Level, error) {
	if l, ok := levelNames[s]; ok {
		return l, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want \"debug\", \"info\", \"warn\" or \"error\")%s",
		s, didYouMean(s, []string{"debug", "info", "warn", "error"}))
}

func formatLevel(l slog.Level) string { return strings.ToLower(l.String()) }

// ParsePrefix reads an IP address ("192.0.2.1", "2001:db8::1", a single
// host) or a CIDR ("192.0.2.0/24"). A CIDR with host bits set
// ("192.0.2.1/24") is refused rather than silently widened.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %q?)", s, m.String())
	}
	return p, nil
}

// formatPrefix writes a single-address prefix as the bare address.
func formatPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// fieldByKey returns the index of the field of struct t tagged key, or -1.
// The match is exact: TOML keys are case-sensitive.
func fieldByKey(t reflect.Type, key string) int {
	for i := range t.NumField() {
		if tomlName(t.Field(i)) == key {
			return i
		}
	}
	return -1
}

// tomlName returns the key of a struct field, "" for fields not in TOML.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// suggestKey returns ` (did you mean "x"?)` for an unknown key in the table
// of type t at path: a near miss among its keys, or the same key in
// another table.
func suggestKey(t reflect.Type, path, key string) string {
	var names []string
	for i := range t.NumField() {
		if n := tomlName(t.Field(i)); n != "" {
			names = append(names, n)
		}
	}
	if s := didYouMean(key, names); s != "" {
		return s
	}
	// Put in the wrong table? Look the key up everywhere.
	want := foldKey(key)
	var found []string
	for _, p := range configKeys() {
		if foldKey(p[strings.LastIndexByte(p, '.')+1:]) == want && p != joinKey(genericKey(path), key) {
			found = append(found, p)
		}
	}
	if len(found) == 1 {
		where := found[0]
		if i := strings.LastIndexByte(where, '.'); i >= 0 {
			return fmt.Sprintf(" (did you mean %q in [%s]?)", where[i+1:], where[:i])
		}
		return fmt.Sprintf(" (did you mean %q at the top, before any table?)", where)
	}
	return ""
}

// configKeys returns the generic path of every key and table of Config.
var configKeys = sync.OnceValue(func() []string {
	var keys []string
	walkKeys(reflect.TypeFor[Config](), "", func(p string, _ reflect.Type) { keys = append(keys, p) })
	return keys
})

// walkKeys calls fn with the generic path and type of every key of the
// struct type t, tables included, depth first in field order.
func walkKeys(t reflect.Type, prefix string, fn func(path string, t reflect.Type)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		p := joinKey(prefix, name)
		fn(p, f.Type)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !isScalar(ft) {
			walkKeys(ft, p, fn)
		}
	}
}

// isScalar reports whether values of type t are written as one TOML
// string, number or boolean rather than as a table.
func isScalar(t reflect.Type) bool {
	if _, ok := codecs[t]; ok {
		return true
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	return t.Kind() != reflect.Struct && t.Kind() != reflect.Slice
}

// didYouMean returns ` (did you mean "x"?)` naming the word of words
// closest to s, if one is close enough to be a likely typo; comparison
// ignores case, "_" and "-", so "AuthservID" finds "authserv_id".
func didYouMean(s string, words []string) string {
	best, bestDist := "", -1
	fs := foldKey(s)
	for _, w := range words {
		if w == "" || w == s {
			continue
		}
		fw := foldKey(w)
		d := levenshtein(fs, fw)
		limit := max(1, min(len(fs), len(fw))/3)
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = w, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func foldKey(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_' || c == '-':
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// levenshtein returns the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
