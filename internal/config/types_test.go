package config

import (
	"encoding"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		text string // String() of the result
	}{
		{"10s", 10 * time.Second, "10s"},
		{"5m", 5 * time.Minute, "5m"},
		{"1h", time.Hour, "1h"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"1d", 24 * time.Hour, "24h"},
		{"2d12h", 60 * time.Hour, "60h"},
		{"48h", 48 * time.Hour, "2d"},
		{"90d", 90 * 24 * time.Hour, "90d"},
		{"1.5s", 1500 * time.Millisecond, "1.5s"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"0", 0, "0s"},
		{"0s", 0, "0s"},
		{"1h0m30s", time.Hour + 30*time.Second, "1h0m30s"},
		{"-5s", -5 * time.Second, "-5s"},
	}
	for _, tc := range tests {
		d, err := ParseDuration(tc.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tc.in, err)
			continue
		}
		if d.Duration() != tc.want || d.String() != tc.text {
			t.Errorf("ParseDuration(%q) = %v (%q), want %v (%q)", tc.in, d.Duration(), d.String(), tc.want, tc.text)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("String() %q does not read back: %v %v", d.String(), back, err)
		}
	}
	for _, bad := range []string{"", "300", "10", "1 h", " 1h", "1x", "d", "1.5d", "1d-5h", "1d 1h", "h1", "999999999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

func TestFileMode(t *testing.T) {
	for in, want := range map[string]FileMode{"0660": 0o660, "660": 0o660, "0o600": 0o600, "0": 0, "0777": 0o777} {
		var m FileMode
		if err := m.UnmarshalText([]byte(in)); err != nil || m != want {
			t.Errorf("%q: got %o, %v", in, m, err)
		}
	}
	for _, bad := range []string{"", "0888", "1777", "rw-r--r--", "-1", "0x1ff", "+660"} {
		var m FileMode
		if err := m.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %o", bad, m)
		}
	}
	if s := FileMode(0o600).String(); s != "0600" {
		t.Errorf("String() = %q", s)
	}
}

type textValue interface {
	encoding.TextMarshaler
	encoding.TextUnmarshaler
}

// TestEnumsRoundTrip checks every word of every enumeration reads back to
// itself, and that invalid values neither marshal nor unmarshal.
func TestEnumsRoundTrip(t *testing.T) {
	newValue := map[string]func() textValue{
		"listener mode":              func() textValue { return new(ListenerMode) },
		"reject action":              func() textValue { return new(RejectAction) },
		"quarantine action":          func() textValue { return new(QuarantineAction) },
		"temperror action":           func() textValue { return new(TempErrorAction) },
		"permerror action":           func() textValue { return new(PermErrorAction) },
		"multiple_from action":       func() textValue { return new(MultipleFromAction) },
		"missing_from action":        func() textValue { return new(MissingFromAction) },
		"missing_dkim_result action": func() textValue { return new(MissingDKIMAction) },
		"log format":                 func() textValue { return new(LogFormat) },
		"store driver":               func() textValue { return new(StoreDriver) },
		"report interval":            func() textValue { return new(Cadence) },
		"report format":              func() textValue { return new(ReportFormat) },
		"starttls mode":              func() textValue { return new(StartTLSMode) },
	}
	for typ, names := range enums {
		mk, ok := newValue[names.what]
		if !ok {
			t.Errorf("%s (%s) is not tested", typ, names.what)
			continue
		}
		for _, w := range names.words {
			v := mk()
			if err := v.UnmarshalText([]byte(w)); err != nil {
				t.Errorf("%s %q: %v", names.what, w, err)
				continue
			}
			if b, err := v.MarshalText(); err != nil || string(b) != w {
				t.Errorf("%s %q marshals to %q, %v", names.what, w, b, err)
			}
		}
		v := mk()
		if err := v.UnmarshalText([]byte(strings.ToUpper(names.words[0]))); err == nil {
			t.Errorf("%s: upper case accepted", names.what)
		}
	}
	if _, err := ListenerMode(3).MarshalText(); err == nil {
		t.Error("ListenerMode(3) marshals")
	}
	if s := ListenerMode(3).String(); s != "listener_mode(3)" {
		t.Errorf("ListenerMode(3).String() = %q", s)
	}
}

func TestDidYouMean(t *testing.T) {
	words := []string{"max_connections", "idle_timeout", "write_timeout", "dns_budget", "shutdown_timeout"}
	tests := []struct{ in, want string }{
		{"max_conection", "max_connections"},
		{"MaxConnections", "max_connections"},
		{"idle-timeout", "idle_timeout"},
		{"idletimeout", "idle_timeout"},
		{"dns_budge", "dns_budget"},
		{"write_timeuot", "write_timeout"},
		{"timeout", ""},
		{"x", ""},
		{"completely_different", ""},
	}
	for _, tc := range tests {
		got := didYouMean(tc.in, words)
		want := ""
		if tc.want != "" {
			want = ` (did you mean "` + tc.want + `"?)`
		}
		if got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":     "127.0.0.1/32",
		"::1":           "::1/128",
		"10.0.0.0/8":    "10.0.0.0/8",
		"2001:db8::/32": "2001:db8::/32",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "localhost", "10.0.0.0/33", "10.0.0.1/8", "1.2.3", "::1/129"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) succeeded", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		text string // String() of the result
	}{
		{"32MiB", 32 << 20, "32MiB"},
		{"512KiB", 512 << 10, "512KiB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"10MB", 10e6, "10MB"},
		{"500kB", 500e3, "500kB"},
		{"500KB", 500e3, "500kB"},
		{"2GB", 2e9, "2GB"},
		{"1500B", 1500, "1500B"},
		{"1024B", 1024, "1KiB"},
		{"1000B", 1000, "1kB"},
		{"32 MiB", 32 << 20, "32MiB"},
		{"0B", 0, "0B"},
	}
	for _, tc := range tests {
		s, err := ParseSize(tc.in)
		if err != nil {
			t.Errorf("ParseSize(%q): %v", tc.in, err)
			continue
		}
		if s != tc.want || s.String() != tc.text {
			t.Errorf("ParseSize(%q) = %d (%q), want %d (%q)", tc.in, s, s.String(), tc.want, tc.text)
		}
		if back, err := ParseSize(s.String()); err != nil || back != s {
			t.Errorf("String() %q does not read back: %v %v", s.String(), back, err)
		}
	}
	for _, bad := range []string{"", "32", "MiB", "32 ", "32XB", "32mib", "-1MiB", "1.5MiB", "32  MiB", "9999999999999GiB", "99999999999999999999B"} {
		if s, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %v", bad, s)
		}
	}
}

func TestUmask(t *testing.T) {
	var u Umask
	if _, set := u.Mask(); set || u.String() != "" {
		t.Errorf("the zero Umask is set: %q", u.String())
	}
	for in, want := range map[string]string{"0022": "0022", "27": "0027", "0o077": "0077", "": ""} {
		var u Umask
		if err := u.UnmarshalText([]byte(in)); err != nil || u.String() != want {
			t.Errorf("%q: got %q, %v", in, u.String(), err)
		}
		if b, err := u.MarshalText(); err != nil || string(b) != want {
			t.Errorf("%q marshals to %q, %v", in, b, err)
		}
	}
	for _, bad := range []string{"0888", "1022", "u=rwx", " 022"} {
		var u Umask
		if err := u.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %s", bad, u)
		}
	}
	if m, set := MakeUmask(0o1027).Mask(); !set || m != 0o027 {
		t.Errorf("MakeUmask keeps %o, %v", m, set)
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		text string
	}{
		{"100/1h", Rate{N: 100, Per: Duration(time.Hour)}, "100/1h"},
		{"10/1m", Rate{N: 10, Per: Duration(time.Minute)}, "10/1m"},
		{"2000/1d", Rate{N: 2000, Per: Duration(24 * time.Hour)}, "2000/24h"},
		{"5/2d", Rate{N: 5, Per: Duration(48 * time.Hour)}, "5/2d"},
		{"unlimited", Rate{}, "unlimited"},
		{"0/1h", Rate{}, "unlimited"},
	} {
		r, err := ParseRate(tc.in)
		if err != nil || r != tc.want || r.String() != tc.text {
			t.Errorf("ParseRate(%q) = %+v (%q), %v; want %+v (%q)", tc.in, r, r.String(), err, tc.want, tc.text)
		}
		if back, err := ParseRate(r.String()); err != nil || back != r {
			t.Errorf("%q does not read back: %+v, %v", r.String(), back, err)
		}
	}
	for _, bad := range []string{"", "100", "x/1h", "10/0s", "10/-1h", "-1/1h", "10/1", "10 /1h", "none"} {
		if r, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %+v", bad, r)
		}
	}
}

func TestCadenceDurations(t *testing.T) {
	for c, want := range map[Cadence]time.Duration{IntervalHourly: time.Hour, IntervalDaily: 24 * time.Hour, IntervalWeekly: 7 * 24 * time.Hour, IntervalNever: 0} {
		if got := c.Duration(); got != want {
			t.Errorf("%s: %v, want %v", c, got, want)
		}
	}
}
