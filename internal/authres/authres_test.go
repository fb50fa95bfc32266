package authres

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// outcome is what a test expects of Parse's error.
type outcome int

const (
	clean   outcome = iota // nil error
	refused                // nil Header and a *SyntaxError
	partial                // Header with the good clauses and *SyntaxError(s)
	noID                   // Header and exactly ErrNoAuthServID
)

func res(method, value string, props ...Property) Result {
	return Result{Method: method, Value: value, Props: props}
}

func prop(typ, name, value string) Property { return Property{Type: typ, Name: name, Value: value} }

func withComment(r Result, c string) Result { r.Comment = c; return r }

func withReason(r Result, reason string) Result { r.Reason = reason; return r }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want outcome
		// id and results are checked unless want is refused.
		id      string
		version int
		results []Result
	}{
		{
			name: "a semicolon inside OpenDKIM's comment does not end the clause",
			in:   "mx.example.org; dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com",
			id:   "mx.example.org",
			results: []Result{withComment(res("dkim", "pass",
				prop("header", "d", "example.com"), prop("header", "i", "@example.com")), "2048-bit key; unprotected")},
		},
		{
			name:    "a comment after the authserv-id is skipped",
			in:      "mx.example.org (OpenDKIM; with = and ; inside); spf=pass smtp.mailfrom=example.com",
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name:    "the authserv-id may carry a version after a comment",
			in:      "mx.example.org (c) 1 (d); spf=pass smtp.mailfrom=example.com",
			id:      "mx.example.org",
			version: 1,
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name: "digits glued to the authserv-id are part of it, not a version",
			in:   "mx1; none",
			id:   "mx1",
		},
		{
			name: "a version with too many digits is refused",
			in:   "mx.example.org 1234567890; none",
			want: refused,
		},
		{
			name: "none yields zero results",
			in:   "mx.example.org; none",
			id:   "mx.example.org",
		},
		{
			name: "none is case-insensitive and may carry a comment",
			in:   "mx.example.org; NONE (nothing checked)",
			id:   "mx.example.org",
		},
		{
			name:    "none among results is an error but the results stay",
			in:      "mx.example.org; spf=pass smtp.mailfrom=example.com; none",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name:    "a method called none is still a method",
			in:      "mx.example.org; none=pass",
			id:      "mx.example.org",
			results: []Result{res("none", "pass")},
		},
		{
			name:    "names and results are lowercased but values are kept as written",
			in:      "MX.Example.ORG; DKIM=PASS Header.D=Example.COM",
			id:      "MX.Example.ORG",
			results: []Result{res("dkim", "pass", prop("header", "d", "Example.COM"))},
		},
		{
			name:    "reason may come after the properties",
			in:      "mx.example.org; dkim=fail header.d=example.com reason=\"bad signature\"",
			id:      "mx.example.org",
			results: []Result{withReason(res("dkim", "fail", prop("header", "d", "example.com")), "bad signature")},
		},
		{
			name:    "reason given twice drops the clause",
			in:      "mx.example.org; dkim=fail reason=a reason=b; spf=pass smtp.mailfrom=example.com",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name: "a bare name=value is a property without type",
			in:   "mx.example.org; dmarc=pass action=none header.from=example.com; compauth=pass reason=100",
			id:   "mx.example.org",
			results: []Result{
				res("dmarc", "pass", prop("", "action", "none"), prop("header", "from", "example.com")),
				withReason(res("compauth", "pass"), "100"),
			},
		},
		{
			name: "quoted values lose their quotes and escapes",
			in:   `mx.example.org; dkim=fail reason="a \"quoted\" \\ reason; with semicolon" header.b="ab/+cd=="`,
			id:   "mx.example.org",
			results: []Result{withReason(res("dkim", "fail", prop("header", "b", "ab/+cd==")),
				`a "quoted" \ reason; with semicolon`)},
		},
		{
			name:    "a quoted local-part joins its domain",
			in:      `mx.example.org; spf=pass smtp.mailfrom="john \"jd\" doe"@example.com`,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", `john "jd" doe@example.com`))},
		},
		{
			name: "IPv6 addresses need no quotes",
			in:   "mx.example.org; iprev=pass policy.iprev=2001:db8::1; arc=pass smtp.remote-ip=[IPv6:2001:db8::2]",
			id:   "mx.example.org",
			results: []Result{
				res("iprev", "pass", prop("policy", "iprev", "2001:db8::1")),
				res("arc", "pass", prop("smtp", "remote-ip", "[IPv6:2001:db8::2]")),
			},
		},
		{
			name:    "a value right after its equal sign may contain equal signs",
			in:      "mx.example.org; spf=pass smtp.mailfrom=SRS0=ab=CD=example.com=u@fwd.example.net",
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "SRS0=ab=CD=example.com=u@fwd.example.net"))},
		},
		{
			name:    "a value with an equal sign after whitespace is refused as ambiguous",
			in:      "mx.example.org; dkim=pass header.d= header.s=sel; spf=pass smtp.mailfrom=example.com",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name:    "an empty value at the end of a clause is accepted",
			in:      "mx.example.org; spf=none smtp.mailfrom=; dkim=none",
			id:      "mx.example.org",
			results: []Result{res("spf", "none", prop("smtp", "mailfrom", "")), res("dkim", "none")},
		},
		{
			name:    "CFWS is allowed around slash, dot and equal signs",
			in:      "mx.example.org; dkim (a) / (b) 1 (c) = (d) pass (e) header (f) . (g) d (h) = (i) example.com (j)",
			id:      "mx.example.org",
			results: []Result{{Method: "dkim", MethodVersion: 1, Value: "pass", Props: []Property{prop("header", "d", "example.com")}, Comment: "a b c d e f g h i j"}},
		},
		{
			name:    "nested comments keep their inner parentheses and quoted-pairs are unescaped",
			in:      `mx.example.org; spf=pass (outer (inner (deepest)) \) \\ "x) smtp.mailfrom=example.com`,
			id:      "mx.example.org",
			results: []Result{withComment(res("spf", "pass", prop("smtp", "mailfrom", "example.com")), `outer (inner (deepest)) ) \ "x`)},
		},
		{
			name:    "empty comments add nothing to the comment text",
			in:      "mx.example.org; spf=pass () (a) () (b) ()",
			id:      "mx.example.org",
			results: []Result{withComment(res("spf", "pass"), "a b")},
		},
		{
			name:    "folds inside comments and quoted-strings are unfolded",
			in:      "mx.example.org; dkim=fail (2048-bit\r\n key) reason=\"long\r\n\treason\"",
			id:      "mx.example.org",
			results: []Result{withComment(withReason(res("dkim", "fail"), "long\treason"), "2048-bit key")},
		},
		{
			name:    "CRLF and bare LF folding are both accepted, and a trailing line break is ignored",
			in:      "mx.example.org;\r\n spf=pass\n\tsmtp.mailfrom=example.com\r\n",
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name: "a line break that does not fold is refused",
			in:   "mx.example.org; spf=fail\r\nX-Evil: dkim=pass",
			want: refused,
		},
		{
			name: "a bare CR is refused",
			in:   "mx.example.org; spf=fail\r smtp.mailfrom=example.com",
			want: refused,
		},
		{
			name: "a control character is refused even inside a comment",
			in:   "mx.example.org; spf=pass (a\x01b) smtp.mailfrom=example.com",
			want: refused,
		},
		{
			name: "invalid UTF-8 is refused",
			in:   "mx.example.org; spf=pass smtp.mailfrom=\xc3\x28@example.com",
			want: refused,
		},
		{
			name:    "UTF-8 is allowed in values and comments",
			in:      "mx.example.org; spf=pass (ça va) smtp.mailfrom=jöe@bücher.example",
			id:      "mx.example.org",
			results: []Result{withComment(res("spf", "pass", prop("smtp", "mailfrom", "jöe@bücher.example")), "ça va")},
		},
		{
			name:    "an unterminated comment drops the rest of the field",
			in:      "mx.example.org; spf=pass smtp.mailfrom=example.com; dkim=pass (oops; dkim=pass header.d=evil.example",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name:    "an unterminated quoted-string drops the rest of the field",
			in:      `mx.example.org; spf=pass smtp.mailfrom=example.com; dkim=fail reason="oops; dkim=pass header.d=evil.example`,
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name:    "recovery skips a quoted-string that follows the error",
			in:      `mx.example.org; dkim=pass header.d=a "b; dkim=pass header.d=evil.example"; spf=pass smtp.mailfrom=example.com`,
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name:    "recovery skips a comment that follows the error",
			in:      "mx.example.org; dkim=pass header.d=a b (c; dkim=pass header.d=evil.example); spf=pass smtp.mailfrom=example.com",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass", prop("smtp", "mailfrom", "example.com"))},
		},
		{
			name: "a bad clause does not lose the good ones around it",
			in:   "mx.example.org; spf=pass smtp.mailfrom=example.com; not a result; dkim=pass header.d=example.com",
			want: partial,
			id:   "mx.example.org",
			results: []Result{
				res("spf", "pass", prop("smtp", "mailfrom", "example.com")),
				res("dkim", "pass", prop("header", "d", "example.com")),
			},
		},
		{
			name:    "empty clauses are ignored",
			in:      "mx.example.org;; spf=pass ;(just a comment); ;",
			id:      "mx.example.org",
			results: []Result{res("spf", "pass")},
		},
		{
			name: "a field without authserv-id returns its results and ErrNoAuthServID",
			in:   "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com;dmarc=pass action=none header.from=example.com;",
			want: noID,
			results: []Result{
				withComment(res("spf", "pass", prop("smtp", "mailfrom", "example.com")), "sender IP is 192.0.2.1"),
				res("dmarc", "pass", prop("", "action", "none"), prop("header", "from", "example.com")),
			},
		},
		{
			name:    "a field starting with a semicolon has no authserv-id",
			in:      " ; dkim=pass header.d=example.com",
			want:    noID,
			results: []Result{res("dkim", "pass", prop("header", "d", "example.com"))},
		},
		{
			name:    "a field starting with a versioned method has no authserv-id",
			in:      "dkim / 1 = pass",
			want:    noID,
			results: []Result{{Method: "dkim", MethodVersion: 1, Value: "pass"}},
		},
		{
			name: "an authserv-id with a job id is kept whole",
			in:   "mx.example.org/4A1B2C3D; dmarc=none",
			id:   "mx.example.org/4A1B2C3D", results: []Result{res("dmarc", "none")},
		},
		{
			name:    "a method version too long drops the clause",
			in:      "mx.example.org; dkim/1234567890=pass; spf=pass",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass")},
		},
		{
			name: "an authserv-id alone is refused",
			in:   "mx.example.org (and nothing else)",
			want: refused,
		},
		{
			name: "Received-SPF is not an Authentication-Results field",
			in:   "Pass (mailfrom) identity=mailfrom; client-ip=192.0.2.1; helo=mail.example.com",
			want: refused,
		},
		{
			name: "an empty quoted authserv-id is refused",
			in:   `""; spf=pass`,
			want: refused,
		},
		{
			name: "an unterminated comment before anything is refused",
			in:   "(mx.example.org; spf=pass",
			want: refused,
		},
		{
			name:    "comments nested deeper than the cap drop the clause and recovery resumes after them",
			in:      "mx.example.org; spf=pass " + strings.Repeat("(", 17) + ";" + strings.Repeat(")", 17) + "; dkim=pass",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("dkim", "pass")},
		},
		{
			name: "comments nested as deep as the cap are fine",
			in:   "mx.example.org; spf=pass " + strings.Repeat("(", 16) + strings.Repeat(")", 16),
			id:   "mx.example.org",
			results: []Result{withComment(res("spf", "pass"),
				strings.Repeat("(", 15)+strings.Repeat(")", 15))},
		},
		{
			name: "an unknown method is kept for the caller to ignore",
			in:   "mx.example.org; x-tls=pass smtp.version=TLSv1.3 smtp.bits=256/256",
			id:   "mx.example.org",
			results: []Result{res("x-tls", "pass",
				prop("smtp", "version", "TLSv1.3"), prop("smtp", "bits", "256/256"))},
		},
		{
			name:    "a property without value separator drops the clause",
			in:      "mx.example.org; dkim=pass header.d; spf=pass",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass")},
		},
		{
			name:    "a missing result drops the clause",
			in:      "mx.example.org; dkim= header.d=example.com; spf=pass",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass")},
		},
		{
			name:    "a clause with more properties than the cap is dropped",
			in:      "mx.example.org; x=pass" + manyProps(65) + "; spf=pass",
			want:    partial,
			id:      "mx.example.org",
			results: []Result{res("spf", "pass")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse(tt.in)
			var se *SyntaxError
			switch tt.want {
			case clean:
				if err != nil {
					t.Fatalf("Parse(%q) error: %v", tt.in, err)
				}
			case refused:
				if h != nil || !errors.As(err, &se) {
					t.Fatalf("Parse(%q) = %#v, %v; want nil and a *SyntaxError", tt.in, h, err)
				}
				return
			case partial:
				if h == nil || !errors.As(err, &se) || errors.Is(err, ErrNoAuthServID) {
					t.Fatalf("Parse(%q) = %#v, %v; want a Header and only a *SyntaxError", tt.in, h, err)
				}
			case noID:
				if h == nil || err != ErrNoAuthServID {
					t.Fatalf("Parse(%q) = %#v, %v; want a Header and ErrNoAuthServID", tt.in, h, err)
				}
			}
			want := &Header{AuthServID: tt.id, Version: tt.version, Results: tt.results}
			if !reflect.DeepEqual(h, want) {
				t.Errorf("Parse(%q)\n got %#v\nwant %#v", tt.in, h, want)
			}
		})
	}
}

func manyProps(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " p.n%d=v", i)
	}
	return b.String()
}

func TestParseLimits(t *testing.T) {
	t.Run("a field of exactly 64 KiB is parsed", func(t *testing.T) {
		head := "mx.example.org; spf=pass ("
		in := head + strings.Repeat("x", maxLength-len(head)-1) + ")"
		if h, err := Parse(in); err != nil || len(h.Results) != 1 {
			t.Fatalf("Parse(64 KiB) = %v, %v", h, err)
		}
	})
	t.Run("a field over 64 KiB is refused before anything else", func(t *testing.T) {
		in := "mx.example.org; spf=pass (" + strings.Repeat("x", maxLength) + ")"
		h, err := Parse(in)
		var se *SyntaxError
		if h != nil || !errors.As(err, &se) {
			t.Fatalf("Parse(64 KiB + 1) = %v, %v", h, err)
		}
	})
	t.Run("256 results are fine", func(t *testing.T) {
		in := "mx.example.org" + strings.Repeat("; dkim=pass", 256)
		if h, err := Parse(in); err != nil || len(h.Results) != 256 {
			t.Fatalf("Parse(256 results) = %d results, %v", len(h.Results), err)
		}
	})
	t.Run("257 clauses are refused, bad ones counted too", func(t *testing.T) {
		in := "mx.example.org" + strings.Repeat("; dkim=pass", 200) + strings.Repeat("; junk", 57)
		if h, err := Parse(in); h != nil || err == nil {
			t.Fatalf("Parse(257 clauses) = %v, %v", h, err)
		}
	})
	t.Run("empty clauses are not counted", func(t *testing.T) {
		in := "mx.example.org; dkim=pass" + strings.Repeat(";", 10000)
		if _, err := Parse(in); err != nil {
			t.Fatalf("Parse(many empty clauses) = %v", err)
		}
	})
}

// TestParseHostileInputsFinish feeds worst cases of each construct at the
// maximum size. They must return promptly with an error (the benchmark
// BenchmarkParseHostile measures them).
func TestParseHostileInputsFinish(t *testing.T) {
	for name, in := range hostileInputs() {
		t.Run(name, func(t *testing.T) {
			h, err := Parse(in)
			if err == nil {
				t.Errorf("Parse(%s) = %d results and no error", name, len(h.Results))
			}
			if len(err.Error()) > 1000 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func hostileInputs() map[string]string {
	// fill repeats unit between prefix and suffix up to the size limit.
	fill := func(prefix, unit, suffix string) string {
		n := (maxLength - len(prefix) - len(suffix)) / len(unit)
		return prefix + strings.Repeat(unit, n) + suffix
	}
	return map[string]string{
		"open parentheses":      fill("mx; spf=pass ", "(", ""),
		"comments then junk":    fill("mx; spf=pass ", "(a) ", "junk"),
		"open quotes":           fill("mx; a=b c.d=", `"`, ""),
		"backslashes":           fill(`mx; a=b r="`, `\`, ""),
		"semicolons after junk": fill("mx; ", "x;", ""),
		"one long keyword":      fill("mx; ", "k", ""),
		"properties":            fill("mx; a=b", " p.q=r", ""),
		"duplicate properties":  fill("mx; a=b", " p.q=r;a=b", ""),
		"deep then shallow":     fill("mx; a=b ", strings.Repeat("(", 17)+strings.Repeat(")", 17)+";a=b ", ""),
		"no authserv-id":        fill("", "a=b c; ", ""),
		"many empty clauses":    fill("mx; a=b", ";", "; junk"),
	}
}

func TestParseErrors(t *testing.T) {
	t.Run("each dropped clause has its own SyntaxError with an offset", func(t *testing.T) {
		in := "mx; junk; spf=pass; more junk"
		_, err := Parse(in)
		var offsets []int
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var se *SyntaxError
			if !errors.As(e, &se) {
				t.Fatalf("%v is not a *SyntaxError", e)
			}
			offsets = append(offsets, se.Offset)
		}
		if want := []int{8, 25}; !reflect.DeepEqual(offsets, want) {
			t.Errorf("offsets = %v, want %v (error %q)", offsets, want, err)
		}
	})
	t.Run("a missing authserv-id and a bad clause are both reported", func(t *testing.T) {
		_, err := Parse("spf=pass; junk")
		var se *SyntaxError
		if !errors.Is(err, ErrNoAuthServID) || !errors.As(err, &se) {
			t.Errorf("err = %v, want ErrNoAuthServID and a *SyntaxError", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error message %q spans lines", err)
		}
	})
	t.Run("the message names the problem and the offset", func(t *testing.T) {
		_, err := Parse("mx; dkim=pass (oops")
		if got, want := err.Error(), "authres: unterminated comment at offset 14"; got != want {
			t.Errorf("err = %q, want %q", got, want)
		}
	})
}

func TestResultProp(t *testing.T) {
	h, err := Parse("mx; dmarc=pass action=none Header.From=example.com")
	if err != nil {
		t.Fatal(err)
	}
	r := h.Results[0]
	tests := []struct {
		typ, name string
		want      string
		ok        bool
	}{
		{"header", "from", "example.com", true},
		{"HEADER", "From", "example.com", true},
		{"", "action", "none", true},
		{"policy", "action", "", false},
		{"header", "d", "", false},
	}
	for _, tt := range tests {
		if got, ok := r.Prop(tt.typ, tt.name); got != tt.want || ok != tt.ok {
			t.Errorf("Prop(%q, %q) = %q, %v; want %q, %v", tt.typ, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestQuoteValue(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a domain stays bare", "example.com", "example.com"},
		{"a result keyword stays bare", "pass", "pass"},
		{"a value with spaces is quoted", "signature verification failed", `"signature verification failed"`},
		{"quotes and backslashes are escaped", `a "b" \c`, `"a \"b\" \\c"`},
		{"an empty value is an empty quoted-string", "", `""`},
		{"an address is quoted because @ is a tspecial", "user@example.com", `"user@example.com"`},
		{"a semicolon is quoted", "a;b", `"a;b"`},
		{"line breaks cannot be injected", "a\r\nX-Evil: 1", `"a  X-Evil: 1"`},
		{"tabs are kept inside quotes", "a\tb", "\"a\tb\""},
		{"non-ASCII is quoted", "bücher", `"bücher"`},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb", "\"a\uFFFDb\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := QuoteValue(tt.in); got != tt.want {
				t.Errorf("QuoteValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHeaderString(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want string
	}{
		{
			name: "OpenDMARC's shape",
			h: Header{AuthServID: "mx.example.org", Results: []Result{
				withComment(res("dmarc", "pass", prop("header", "from", "example.com")), "p=reject dis=none"),
			}},
			want: "mx.example.org; dmarc=pass (p=reject dis=none) header.from=example.com",
		},
		{
			name: "no results is none",
			h:    Header{AuthServID: "mx.example.org", Version: 1},
			want: "mx.example.org 1; none",
		},
		{
			name: "addresses stay bare and reasons are quoted",
			h: Header{AuthServID: "mx.example.org/ABC", Results: []Result{
				withReason(res("spf", "fail", prop("smtp", "mailfrom", "a+b=c@example.com")), "not permitted"),
				{Method: "dkim", MethodVersion: 1, Value: "pass", Props: []Property{prop("header", "i", "@example.com"), prop("", "x-bits", "2048")}},
			}},
			want: `mx.example.org/ABC; spf=fail reason="not permitted" smtp.mailfrom=a+b=c@example.com; dkim/1=pass header.i=@example.com x-bits=2048`,
		},
		{
			name: "comments are escaped and cannot break out",
			h: Header{AuthServID: "mx", Results: []Result{
				withComment(res("spf", "pass"), "a) ; dkim=pass (b\\"),
			}},
			want: `mx; spf=pass (a\) ; dkim=pass \(b\\)`,
		},
		{
			name: "junk in names is dropped and line breaks cannot be injected",
			h: Header{AuthServID: "mx\r\nX-Evil: 1", Results: []Result{
				res("sp f;", "pass\r\n", prop("smtp", "mail from", "a\r\nb")),
			}},
			want: `"mx  X-Evil: 1"; spf=pass smtp.mailfrom="a  b"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.h.String()
			if got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if _, err := Parse(got); err != nil {
				t.Errorf("Parse(String()) error: %v", err)
			}
		})
	}
}

// typical is what the milter sees most: OpenDKIM's and pypolicyd-spf's
// results, folded.
const typical = "mx.example.org;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.com" +
	" header.i=@example.com header.a=rsa-sha256 header.s=sel header.b=AbCdEf12;\r\n" +
	"\tspf=pass (sender SPF authorized) smtp.mailfrom=user@example.com"

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(typical)))
	for b.Loop() {
		if _, err := Parse(typical); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHostile(b *testing.B) {
	for name, in := range hostileInputs() {
		b.Run(strings.ReplaceAll(name, " ", "-"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				Parse(in)
			}
		})
	}
}

func TestAuthServIDOf(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a well-formed field gives its authserv-id", "mx.example.org; dmarc=pass", "mx.example.org"},
		{"a malformed field still gives the id it claims", "mx.example.org\x01; dmarc=pass header.from=(", "mx.example.org"},
		{"a field with only an id gives the id", "  (comment) mx.example.org  ", "mx.example.org"},
		{"a quoted id is unquoted", `"mx.example.org"; none`, "mx.example.org"},
		{"a job id stays attached", "mx.example.org/4A1B; none", "mx.example.org/4A1B"},
		{"a field starting with a result claims nothing", "dmarc=pass header.from=example.com", ""},
		{"a field starting with a semicolon claims nothing", "; dmarc=pass", ""},
		{"an unterminated comment claims nothing", "(mx.example.org; dmarc=pass", ""},
		{"an unterminated quote claims nothing", `"mx.example.org; dmarc=pass`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AuthServIDOf(tt.in); got != tt.want {
				t.Errorf("AuthServIDOf(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
