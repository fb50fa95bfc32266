package authres

import (
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that what it returns is
// well-formed, and that formatting what it returned and parsing that again
// gives the same Header: the formatter cannot be tricked into writing
// something that reads differently.
func FuzzParse(f *testing.F) {
	for _, file := range corpus(f) {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := Parse(in)
		id := AuthServIDOf(in)
		if h != nil && id != h.AuthServID {
			t.Fatalf("AuthServIDOf = %q, Parse found %q", id, h.AuthServID)
		}
		if h == nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("nil Header with error %v, want a *SyntaxError", err)
			}
			return
		}
		checkWellFormed(t, h)
		if h.AuthServID == "" && len(h.Results) == 0 {
			return // formats to "", which is not a field
		}

		out := h.String()
		if len(out) > maxLength {
			return // quoting can make a field grow past the limit
		}
		h2, err2 := Parse(out)
		switch {
		case h.AuthServID == "" && err2 != ErrNoAuthServID:
			t.Fatalf("Parse(%q) error = %v, want ErrNoAuthServID", out, err2)
		case h.AuthServID != "" && err2 != nil:
			t.Fatalf("Parse(%q) error: %v", out, err2)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip through %q changed\n%+v\ninto\n%+v", out, h, h2)
		}
		if out2 := h2.String(); out2 != out {
			t.Fatalf("String() not stable: %q then %q", out, out2)
		}
	})
}

func checkWellFormed(t *testing.T, h *Header) {
	t.Helper()
	if len(h.Results) > maxResults {
		t.Fatalf("%d results", len(h.Results))
	}
	noCTL(t, h.AuthServID)
	for _, r := range h.Results {
		isLowerKeyword(t, r.Method, false)
		isLowerKeyword(t, r.Value, false)
		noCTL(t, r.Reason)
		noCTL(t, r.Comment)
		if r.Props != nil && len(r.Props) == 0 {
			t.Fatal("empty non-nil Props")
		}
		for _, p := range r.Props {
			isLowerKeyword(t, p.Type, true)
			isLowerKeyword(t, p.Name, false)
			noCTL(t, p.Value)
		}
	}
}

func isLowerKeyword(t *testing.T, s string, emptyOK bool) {
	t.Helper()
	if s == "" && !emptyOK {
		t.Fatal("empty keyword")
	}
	for i := 0; i < len(s); i++ {
		if !isKeywordChar(s[i]) || 'A' <= s[i] && s[i] <= 'Z' {
			t.Fatalf("keyword %q is not a lowercase keyword", s)
		}
	}
}

func noCTL(t *testing.T, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			t.Fatalf("%q holds a control character", s)
		}
	}
}
