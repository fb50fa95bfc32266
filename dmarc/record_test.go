package dmarc

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseEffectiveValues(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		txt  string
		want func(r *Record) any // the value under test
		val  any
	}{
		{"a minimal record takes every default", RFC7489, "v=DMARC1; p=none",
			func(r *Record) any {
				return []any{r.P, r.SP, r.NP, r.ADKIM, r.ASPF, r.Pct, r.FO, r.RF, r.RI, r.Testing, r.PSD, len(r.RUA), len(r.RUF)}
			},
			[]any{PolicyNone, PolicyUnset, PolicyUnset, Relaxed, Relaxed, 100, FO0, []string{"afrf"}, uint32(86400), false, PSDUnknown, 0, 0}},
		{"a minimal RFC 9989 record has no rf, ri or pct", RFC9989, "v=DMARC1; p=none",
			func(r *Record) any { return []any{r.RF, r.RI, r.Pct} }, []any{[]string(nil), uint32(0), 100}},
		{"p=quarantine is read", RFC9989, "v=DMARC1; p=quarantine", func(r *Record) any { return r.P }, PolicyQuarantine},
		{"p=reject is read", RFC9989, "v=DMARC1; p=reject", func(r *Record) any { return r.P }, PolicyReject},
		{"policy values are case-insensitive", RFC9989, "v=DMARC1; P=ReJeCt", func(r *Record) any { return r.P }, PolicyReject},
		{"the version tag name is case-insensitive", RFC9989, "V=DMARC1; p=reject", func(r *Record) any { return r.P }, PolicyReject},
		{"sp is read", RFC9989, "v=DMARC1; p=none; sp=reject", func(r *Record) any { return r.SP }, PolicyReject},
		{"np is read under RFC 9989", RFC9989, "v=DMARC1; p=none; np=reject", func(r *Record) any { return r.NP }, PolicyReject},
		{"np is ignored under RFC 7489", RFC7489, "v=DMARC1; p=none; np=reject", func(r *Record) any { return r.NP }, PolicyUnset},
		{"adkim=s is strict", RFC9989, "v=DMARC1; p=none; adkim=s", func(r *Record) any { return r.ADKIM }, Strict},
		{"aspf=S is strict", RFC9989, "v=DMARC1; p=none; aspf=S", func(r *Record) any { return r.ASPF }, Strict},
		{"an invalid adkim falls back to relaxed", RFC9989, "v=DMARC1; p=none; adkim=strict", func(r *Record) any { return r.ADKIM }, Relaxed},
		{"pct is read under RFC 7489", RFC7489, "v=DMARC1; p=reject; pct=25", func(r *Record) any { return r.Pct }, 25},
		{"pct=0 is read under RFC 7489", RFC7489, "v=DMARC1; p=reject; pct=0", func(r *Record) any { return r.Pct }, 0},
		{"pct over 100 falls back to 100", RFC7489, "v=DMARC1; p=reject; pct=101", func(r *Record) any { return r.Pct }, 100},
		{"a negative pct falls back to 100", RFC7489, "v=DMARC1; p=reject; pct=-1", func(r *Record) any { return r.Pct }, 100},
		{"pct is ignored under RFC 9989", RFC9989, "v=DMARC1; p=reject; pct=0", func(r *Record) any { return r.Pct }, 100},
		{"t=y is testing under RFC 9989", RFC9989, "v=DMARC1; p=reject; t=y", func(r *Record) any { return r.Testing }, true},
		{"t=n is not testing", RFC9989, "v=DMARC1; p=reject; t=n", func(r *Record) any { return r.Testing }, false},
		{"an invalid t means n", RFC9989, "v=DMARC1; p=reject; t=yes", func(r *Record) any { return r.Testing }, false},
		{"t is ignored under RFC 7489", RFC7489, "v=DMARC1; p=reject; t=y", func(r *Record) any { return r.Testing }, false},
		{"psd=y is read", RFC9989, "v=DMARC1; p=none; psd=y", func(r *Record) any { return r.PSD }, PSDYes},
		{"psd=n is read", RFC9989, "v=DMARC1; p=none; psd=n", func(r *Record) any { return r.PSD }, PSDNo},
		{"psd=u is the default", RFC9989, "v=DMARC1; p=none; psd=u", func(r *Record) any { return r.PSD }, PSDUnknown},
		{"an invalid psd means u", RFC9989, "v=DMARC1; p=none; psd=x", func(r *Record) any { return r.PSD }, PSDUnknown},
		{"psd is ignored under RFC 7489", RFC7489, "v=DMARC1; p=none; psd=y", func(r *Record) any { return r.PSD }, PSDUnknown},
		{"fo lists are colon separated", RFC9989, "v=DMARC1; p=none; fo=1:d:s", func(r *Record) any { return r.FO }, FO1 | FOD | FOS},
		{"fo allows whitespace around values", RFC9989, "v=DMARC1; p=none; fo=d : s", func(r *Record) any { return r.FO }, FOD | FOS},
		{"an invalid fo falls back to 0 as a whole", RFC9989, "v=DMARC1; p=none; fo=1:x", func(r *Record) any { return r.FO }, FO0},
		{"fo=0:1 keeps the broader 1", RFC9989, "v=DMARC1; p=none; fo=0:1", func(r *Record) any { return r.FO }, FO1},
		{"rf is read under RFC 7489", RFC7489, "v=DMARC1; p=none; rf=afrf", func(r *Record) any { return r.RF }, []string{"afrf"}},
		{"an unknown rf falls back to afrf", RFC7489, "v=DMARC1; p=none; rf=xml", func(r *Record) any { return r.RF }, []string{"afrf"}},
		{"rf is ignored under RFC 9989", RFC9989, "v=DMARC1; p=none; rf=iodef", func(r *Record) any { return r.RF }, []string(nil)},
		{"ri is read under RFC 7489", RFC7489, "v=DMARC1; p=none; ri=3600", func(r *Record) any { return r.RI }, uint32(3600)},
		{"an invalid ri falls back to a day", RFC7489, "v=DMARC1; p=none; ri=hourly", func(r *Record) any { return r.RI }, uint32(86400)},
		{"ri is ignored under RFC 9989", RFC9989, "v=DMARC1; p=none; ri=3600", func(r *Record) any { return r.RI }, uint32(0)},
		{"rua holds several mailto URIs", RFC9989, "v=DMARC1; p=none; rua=mailto:a@example.com, mailto:b@example.net",
			func(r *Record) any { return addresses(r.RUA) }, []string{"a@example.com", "b@example.net"}},
		{"ruf is read", RFC9989, "v=DMARC1; p=none; ruf=mailto:f@example.com",
			func(r *Record) any { return addresses(r.RUF) }, []string{"f@example.com"}},
		{"a size suffix with a unit is kept under RFC 7489", RFC7489, "v=DMARC1; p=none; rua=mailto:a@example.com!10m",
			func(r *Record) any { return r.RUA[0].MaxSize }, uint64(10 << 20)},
		{"a size suffix without a unit is bytes", RFC7489, "v=DMARC1; p=none; rua=mailto:a@example.com!5000",
			func(r *Record) any { return r.RUA[0].MaxSize }, uint64(5000)},
		{"every size unit is understood", RFC7489, "v=DMARC1; p=none; rua=mailto:a@x.example!1k,mailto:b@x.example!1g,mailto:c@x.example!1t",
			func(r *Record) any { return []uint64{r.RUA[0].MaxSize, r.RUA[1].MaxSize, r.RUA[2].MaxSize} }, []uint64{1 << 10, 1 << 30, 1 << 40}},
		{"a size suffix is ignored under RFC 9989", RFC9989, "v=DMARC1; p=none; rua=mailto:a@example.com!10m",
			func(r *Record) any { return []any{r.RUA[0].MaxSize, r.RUA[0].Address} }, []any{uint64(0), "a@example.com"}},
		{"an invalid URI is dropped and the others kept", RFC9989, "v=DMARC1; p=none; rua=not a uri,mailto:a@example.com",
			func(r *Record) any { return addresses(r.RUA) }, []string{"a@example.com"}},
		{"a mailto without a domain is dropped", RFC9989, "v=DMARC1; p=none; rua=mailto:nobody,mailto:a@example.com",
			func(r *Record) any { return addresses(r.RUA) }, []string{"a@example.com"}},
		{"an https URI is kept but has no address", RFC9989, "v=DMARC1; p=none; rua=https://example.com/r",
			func(r *Record) any { return []any{len(r.RUA), r.RUA[0].Address} }, []any{1, ""}},
		{"percent-encoded mailto addresses are decoded", RFC9989, "v=DMARC1; p=none; rua=mailto:a%2Bdmarc@example.com",
			func(r *Record) any { return addresses(r.RUA) }, []string{"a+dmarc@example.com"}},
		{"the first of duplicate tags wins", RFC9989, "v=DMARC1; p=reject; p=none", func(r *Record) any { return r.P }, PolicyReject},
		{"unknown tags are ignored", RFC9989, "v=DMARC1; p=reject; foo=bar", func(r *Record) any { return r.P }, PolicyReject},
		{"whitespace around separators is allowed", RFC9989, "v = DMARC1 ;\tp = reject ; sp=none ;", func(r *Record) any { return []Policy{r.P, r.SP} }, []Policy{PolicyReject, PolicyNone}},
		{"a trailing separator is allowed", RFC9989, "v=DMARC1; p=reject;", func(r *Record) any { return r.P }, PolicyReject},
		{"p may follow other tags", RFC9989, "v=DMARC1; rua=mailto:a@example.com; p=quarantine", func(r *Record) any { return r.P }, PolicyQuarantine},
		{"a missing p with a valid rua means p=none", RFC7489, "v=DMARC1; rua=mailto:a@example.com",
			func(r *Record) any { return []any{r.P, r.PFallback} }, []any{PolicyNone, true}},
		{"an invalid p with a valid rua means p=none", RFC9989, "v=DMARC1; p=block; rua=mailto:a@example.com",
			func(r *Record) any { return []any{r.P, r.PFallback} }, []any{PolicyNone, true}},
		{"an invalid sp with a valid rua makes the whole record p=none", RFC9989, "v=DMARC1; p=reject; sp=block; rua=mailto:a@example.com",
			func(r *Record) any { return []any{r.P, r.SP, r.PFallback} }, []any{PolicyNone, PolicyUnset, true}},
		{"an invalid np under RFC 7489 is just an unknown tag", RFC7489, "v=DMARC1; p=reject; np=block",
			func(r *Record) any { return []any{r.P, r.PFallback} }, []any{PolicyReject, false}},
		{"the fallback also drops t=y", RFC9989, "v=DMARC1; p=block; t=y; rua=mailto:a@example.com",
			func(r *Record) any { return r.Testing }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.txt, tt.spec)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.txt, err)
			}
			if got := tt.want(r); !reflect.DeepEqual(got, tt.val) {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.txt, got, tt.val)
			}
		})
	}
}

func addresses(us []URI) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Address)
	}
	return out
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name    string
		txt     string
		wantErr error
		wantMsg string
	}{
		{"an SPF record is not DMARC", "v=spf1 -all", ErrNotDMARC, "is not DMARC1"},
		{"a lower-case version is not DMARC1", "v=dmarc1; p=reject", ErrNotDMARC, "not DMARC1"},
		{"a record whose first tag is p is not DMARC", "p=reject; v=DMARC1", ErrNotDMARC, "first tag is not v"},
		{"DMARC2 is not DMARC1", "v=DMARC2; p=reject", ErrNotDMARC, "not DMARC1"},
		{"an empty string is not DMARC", "", ErrNotDMARC, "does not start"},
		{"binary garbage is not DMARC", "\x00\xff\xfe", ErrNotDMARC, "does not start"},
		{"only separators after the version is unusable", "v=DMARC1;;;;", ErrUnusable, "no p tag and no valid rua"},
		{"a version alone is unusable", "v=DMARC1", ErrUnusable, "no p tag"},
		{"an invalid p without rua is unusable", "v=DMARC1; p=block", ErrUnusable, "invalid p tag"},
		{"binary bytes in p are unusable", "v=DMARC1; p=\xff\xfe", ErrUnusable, "invalid p tag"},
		{"an empty p is an invalid p", "v=DMARC1; p=; sp=; rua=", ErrUnusable, "invalid p tag"},
		{"an empty sp is an invalid sp", "v=DMARC1; p=reject; sp=", ErrUnusable, "invalid sp tag"},
		{"tags without equals leave no p", "v=DMARC1; p; rua", ErrUnusable, "no p tag"},
		{"an invalid sp without rua is unusable", "v=DMARC1; p=reject; sp=maybe", ErrUnusable, "invalid sp tag"},
		{"an invalid np without rua is unusable under RFC 9989", "v=DMARC1; p=reject; np=maybe", ErrUnusable, "invalid np tag"},
		{"an rua of invalid URIs does not rescue a missing p", "v=DMARC1; rua=nonsense", ErrUnusable, "no p tag"},
		{"a 64 KiB record is unusable", "v=DMARC1; p=reject; rua=mailto:a@example.com; x=" + strings.Repeat("a", 64<<10), ErrUnusable, "over the 8192-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.txt, RFC9989)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want %v", clip(tt.txt), err, tt.wantErr)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(pe.Error(), tt.wantMsg) {
				t.Errorf("Parse(%q) error = %v, want it to say %q", clip(tt.txt), err, tt.wantMsg)
			}
		})
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name   string
		spec   Spec
		txt    string
		sev    Severity
		tag    string
		offset int
		msg    string
	}{
		{"a tag RFC 9989 removed is a warning", RFC9989, "v=DMARC1; p=none; pct=50", Warning, "pct", 18, "RFC 9989 removed pct"},
		{"rf under RFC 9989 is a warning", RFC9989, "v=DMARC1; p=none; rf=afrf", Warning, "rf", 18, "RFC 9989 removed rf"},
		{"ri under RFC 9989 is a warning", RFC9989, "v=DMARC1; p=none; ri=60", Warning, "ri", 18, "RFC 9989 removed ri"},
		{"an RFC 9989 tag under RFC 7489 is noted", RFC7489, "v=DMARC1; p=none; np=reject", Info, "np", 18, "RFC 9989 tag"},
		{"a duplicate tag is a warning with its offset", RFC9989, "v=DMARC1; p=none; p=reject", Warning, "p", 18, "duplicate tag"},
		{"a duplicate beyond the sixteenth tag name is a warning", RFC9989, "v=DMARC1; p=none; xa=1; xb=1; xc=1; xd=1; xe=1; xf=1; xg=1; xh=1; xi=1; xj=1; xk=1; xl=1; xm=1; xn=1; xo=1; xp=1; xp=2", Warning, "xp", 114, "duplicate tag"},
		{"an unknown tag is noted", RFC9989, "v=DMARC1; p=none; foo=bar", Info, "foo", 18, "unknown tag"},
		{"a tag without a value is a warning", RFC9989, "v=DMARC1; p=none; fo=", Warning, "fo", 21, "no value"},
		{"a pair without equals is a warning", RFC9989, "v=DMARC1; p=none; junk", Warning, "", 18, "not a tag=value pair"},
		{"a bad tag name is a warning", RFC9989, "v=DMARC1; p=none; r-u-a=x", Warning, "", 18, "not a valid tag name"},
		{"p out of place is a warning", RFC9989, "v=DMARC1; sp=none; p=none", Warning, "p", 19, "not the tag after v"},
		{"the p fallback is an error", RFC9989, "v=DMARC1; rua=mailto:a@example.com", Error, "p", 34, "applied as p=none"},
		{"an obsolete size suffix is a warning under RFC 9989", RFC9989, "v=DMARC1; p=none; rua=mailto:a@example.com!1m", Warning, "rua", 18, "obsolete"},
		{"a non-mailto URI is a warning", RFC9989, "v=DMARC1; p=none; rua=https://example.com/", Warning, "rua", 18, "only mailto"},
		{"binary bytes point at the byte", RFC9989, "v=DMARC1; p=none; sp=ab\x01", Warning, "sp", 23, "0x01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.txt, tt.spec)
			if err != nil && r == nil {
				t.Fatalf("Parse(%q): %v", tt.txt, err)
			}
			for _, p := range r.Problems {
				if p.Severity == tt.sev && p.Tag == tt.tag && p.Offset == tt.offset && strings.Contains(p.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("Parse(%q) problems = %v, want %s at %d (%s) saying %q", tt.txt, r.Problems, tt.sev, tt.offset, tt.tag, tt.msg)
		})
	}
}

func TestParseKeepsTagsAsWritten(t *testing.T) {
	r, err := Parse("v=DMARC1; P=Reject ; rua = mailto:a@example.com", RFC9989)
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{{"v", "DMARC1", 0}, {"p", "Reject", 10}, {"rua", "mailto:a@example.com", 21}}
	if !reflect.DeepEqual(r.Tags, want) {
		t.Errorf("Tags = %#v, want %#v", r.Tags, want)
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Example.COM", "example.com", true},
		{"example.com.", "example.com", true},
		{"bücher.example", "xn--bcher-kva.example", true},
		{"BÜCHER.example", "xn--bcher-kva.example", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"_dmarc.example.com", "_dmarc.example.com", true},
		{"", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"[192.0.2.1]", "", false},
		{"exa mple.com", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
		{strings.Repeat("a.", 127) + "com", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=reject",
		"v=DMARC1; p=none; sp=quarantine; np=reject; adkim=s; aspf=r; pct=50; t=y; psd=n; fo=1:d:s; rf=afrf; ri=3600; rua=mailto:a@example.com!10m, mailto:b@example.net; ruf=mailto:f@example.com",
		"v=DMARC1;;;;",
		"v=DMARC1; rua=mailto:a@example.com",
		"v=DMARC1; p=\xff",
		"V = DMARC1 ; P = Reject ;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, spec := range []Spec{RFC9989, RFC7489} {
			r, err := Parse(s, spec)
			switch {
			case err == nil && r == nil:
				t.Fatal("nil record without error")
			case err == nil:
				if r.P == PolicyUnset {
					t.Fatalf("usable record %q has no policy", s)
				}
				if r.Pct < 0 || r.Pct > 100 {
					t.Fatalf("pct %d out of range", r.Pct)
				}
				for _, p := range r.Problems {
					if p.Offset < 0 || p.Offset > len(s) {
						t.Fatalf("problem offset %d outside %d-byte record", p.Offset, len(s))
					}
				}
			case !errors.Is(err, ErrNotDMARC) && !errors.Is(err, ErrUnusable):
				t.Fatalf("unexpected error kind: %v", err)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	const txt = "v=DMARC1; p=reject; sp=quarantine; adkim=s; rua=mailto:dmarc@example.com, mailto:agg@example.net; ruf=mailto:fail@example.com; fo=1"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(txt, RFC9989); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRecordCacheKeepsRecordsInUse(t *testing.T) {
	var c recordCache
	hot := "v=DMARC1; p=reject; rua=mailto:d@hot.example"
	first, err := c.parse(hot, RFC9989)
	if err != nil {
		t.Fatal(err)
	}
	// A stream of distinct records, several generations' worth, with the
	// hot one in use all along: it is never parsed again.
	for i := range 3 * recordCacheSize {
		if _, err := c.parse("v=DMARC1; p=none; rua=mailto:d@d"+strconv.Itoa(i)+".example", RFC9989); err != nil {
			t.Fatal(err)
		}
		if r, _ := c.parse(hot, RFC9989); r != first {
			t.Fatalf("the record in use was parsed again after %d others", i)
		}
	}
	if n := len(c.m) + len(c.old); n > 2*recordCacheSize {
		t.Errorf("%d records kept, more than two generations", n)
	}
	// A record parsed for one spec is not taken for another.
	if r, _ := c.parse(hot, RFC7489); r == first {
		t.Error("the same record object for two specs")
	}
}
