package dmarc

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestVerifyDestination(t *testing.T) {
	r := MapResolver{
		TXT: map[string][]string{
			"_dmarc.example.com":                               {"v=DMARC1; p=none; rua=mailto:d@mail.example.com"},
			"example.com._report._dmarc.reports.example.net":   {"v=DMARC1"},
			"example.com._report._dmarc.redirect.example.net":  {"v=DMARC1; rua=mailto:other@redirect.example.net"},
			"example.com._report._dmarc.elsewhere.example.net": {"v=DMARC1; rua=mailto:x@evil.example"},
			"example.com._report._dmarc.spf.example.net":       {"v=spf1 -all"},
		},
		Fail: map[string]error{"example.com._report._dmarc.broken.example.net": ErrTemporary},
	}
	tests := []struct {
		name       string
		uri        string
		external   bool
		authorized bool
		send       []string
		temporary  bool
	}{
		{"a destination inside the organizational domain needs no authorization", "mailto:d@mail.example.com", false, true, []string{"d@mail.example.com"}, false},
		{"an external destination with a v=DMARC1 record is authorized", "mailto:d@reports.example.net", true, true, []string{"d@reports.example.net"}, false},
		{"an external destination without a record is refused", "mailto:d@nobody.example.org", true, false, nil, false},
		{"a record that is not DMARC does not authorize", "mailto:d@spf.example.net", true, false, nil, false},
		{"an override on the same host replaces the destination", "mailto:d@redirect.example.net", true, true, []string{"other@redirect.example.net"}, false},
		{"an override to another host refuses both", "mailto:d@elsewhere.example.net", true, false, nil, false},
		{"a DNS failure is temporary", "mailto:d@broken.example.net", true, false, nil, true},
		{"an https URI is not supported", "https://reports.example.net/", false, false, nil, false},
	}
	e := &Evaluator{Resolver: r}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := parseURI(tt.uri, RFC9989)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.VerifyDestination(context.Background(), "example.com", u, "rua")
			if tt.temporary != errors.Is(err, ErrTemporary) {
				t.Fatalf("err = %v, temporary want %v", err, tt.temporary)
			}
			if err != nil {
				return
			}
			if d.External != tt.external || d.Authorized != tt.authorized || !reflect.DeepEqual(addresses(d.Send), tt.send) {
				t.Errorf("VerifyDestination = %+v; want external=%v authorized=%v send=%v", d, tt.external, tt.authorized, tt.send)
			}
			if !d.Authorized && d.Reason == "" {
				t.Error("a refusal without a reason")
			}
		})
	}
}
