package dmarc_test

import (
	"context"
	"testing"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/dnstest"
)

// BenchmarkEvaluateWarmCache measures Evaluate over the daemon's real
// resolver with every answer cached: the steady state of a busy MX. In
// "same-domain" SPF and DKIM both use the From domain, so alignment needs no
// DNS; in "subdomain" SPF passes for a bounce subdomain, and relaxed
// alignment walks the tree for it and for the From domain.
func BenchmarkEvaluateWarmCache(b *testing.B) {
	srv := dnstest.Start(b,
		"example.com. 3600 IN SOA ns.example.com. host.example.com. 1 3600 600 86400 3600",
		`_dmarc.example.com. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"`,
		"bounces.example.com. 3600 IN A 192.0.2.1",
		"com. 3600 IN SOA ns.com. host.com. 1 3600 600 86400 3600",
	)
	res, err := dnscache.New(dnscache.Config{Nameservers: []string{srv.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	inputs := []struct {
		name string
		in   dmarc.Input
	}{
		{"same-domain", dmarc.Input{
			FromDomain: "example.com",
			SPF:        dmarc.SPF{Domain: "example.com", Result: dmarc.AuthPass},
			DKIM:       []dmarc.DKIM{{Domain: "example.com", Selector: "s1", Result: dmarc.AuthPass}},
		}},
		{"subdomain", dmarc.Input{
			FromDomain: "example.com",
			SPF:        dmarc.SPF{Domain: "bounces.example.com", Result: dmarc.AuthPass},
			DKIM:       []dmarc.DKIM{{Domain: "example.com", Selector: "s1", Result: dmarc.AuthPass}},
		}},
	}
	for _, spec := range []dmarc.Spec{dmarc.RFC9989, dmarc.RFC7489} {
		for _, c := range inputs {
			in := c.in
			b.Run(spec.String()+"/"+c.name, func(b *testing.B) {
				e := &dmarc.Evaluator{Resolver: res, Spec: spec}
				ctx := context.Background()
				if r, err := e.Evaluate(ctx, in); err != nil || r.Outcome != dmarc.OutcomePass {
					b.Fatalf("warm-up: %v %v", r.Outcome, err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if r, _ := e.Evaluate(ctx, in); r.Outcome != dmarc.OutcomePass {
						b.Fatal(r.Outcome)
					}
				}
			})
		}
	}
}
