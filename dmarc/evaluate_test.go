package dmarc

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// countingResolver records the TXT names queried.
type countingResolver struct {
	Resolver
	mu    sync.Mutex
	names []string
}

func (c *countingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	c.mu.Lock()
	c.names = append(c.names, name)
	c.mu.Unlock()
	return c.Resolver.LookupTXT(ctx, name)
}

func TestTreeWalkQueries(t *testing.T) {
	long := "a.b.c.d.e.f.g.h.i.j.mail.example.com"
	tests := []struct {
		name string
		from string
		want []string
	}{
		{"a ten-label domain is shortened to seven labels after the first query", long, []string{
			"_dmarc." + long,
			"_dmarc.g.h.i.j.mail.example.com",
			"_dmarc.h.i.j.mail.example.com",
			"_dmarc.i.j.mail.example.com",
			"_dmarc.j.mail.example.com",
			"_dmarc.mail.example.com",
			"_dmarc.example.com",
			"_dmarc.com",
		}},
		{"a three-label domain walks to the top-level domain", "a.example.com", []string{
			"_dmarc.a.example.com", "_dmarc.example.com", "_dmarc.com",
		}},
		{"an eight-label domain walks from its parent", "b.c.d.e.f.g.example.com", []string{
			"_dmarc.b.c.d.e.f.g.example.com", "_dmarc.c.d.e.f.g.example.com", "_dmarc.d.e.f.g.example.com",
			"_dmarc.e.f.g.example.com", "_dmarc.f.g.example.com", "_dmarc.g.example.com", "_dmarc.example.com", "_dmarc.com",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingResolver{Resolver: MapResolver{}}
			e := &Evaluator{Resolver: cr}
			res, err := e.Evaluate(context.Background(), Input{FromDomain: tt.from})
			if err != nil || res.Outcome != OutcomeNone {
				t.Fatalf("Evaluate = %v, %v; want none", res.Outcome, err)
			}
			if !reflect.DeepEqual(cr.names, tt.want) {
				t.Errorf("queries = %q\nwant %q", cr.names, tt.want)
			}
		})
	}
}

func TestEvaluationReadsEachNameOnce(t *testing.T) {
	cr := &countingResolver{Resolver: MapResolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=reject"},
	}}}
	e := &Evaluator{Resolver: cr}
	res, err := e.Evaluate(context.Background(), Input{
		FromDomain: "a.b.example.com",
		SPF:        SPF{Domain: "c.b.example.com", Result: AuthPass},
		DKIM:       []DKIM{{Domain: "x.example.com", Result: AuthPass}, {Domain: "y.example.org", Result: AuthPass}},
	})
	if err != nil || res.Outcome != OutcomePass {
		t.Fatalf("Evaluate = %v, %v; want pass", res.Outcome, err)
	}
	seen := map[string]int{}
	for _, n := range cr.names {
		seen[n]++
		if seen[n] > 1 {
			t.Errorf("%s queried %d times in %q", n, seen[n], cr.names)
		}
	}
}

func TestPctSamplingIsDeterministicWithASeededSource(t *testing.T) {
	r := MapResolver{TXT: map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject; pct=30"}}}
	e := &Evaluator{Resolver: r, Spec: RFC7489}
	run := func() (out []Disposition) {
		rnd := rand.New(rand.NewPCG(1, 2))
		for range 1000 {
			res, err := e.Evaluate(context.Background(), Input{FromDomain: "example.com", Rand: rnd})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.Disposition)
		}
		return out
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different dispositions")
	}
	rejects := 0
	for _, d := range a {
		if d == DispositionReject {
			rejects++
		} else if d != DispositionQuarantine {
			t.Fatalf("pct sampling gave %v, want reject or quarantine", d)
		}
	}
	if rejects < 230 || rejects > 370 {
		t.Errorf("pct=30 rejected %d of 1000; want about 300", rejects)
	}
}

func TestTemporaryFailuresAreTyped(t *testing.T) {
	r := MapResolver{
		TXT:  map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}},
		Fail: map[string]error{"_dmarc.example.org": errors.New("server misbehaving")},
	}
	e := &Evaluator{Resolver: r}
	res, err := e.Evaluate(context.Background(), Input{FromDomain: "example.org"})
	if res.Outcome != OutcomeTempError || !errors.Is(err, ErrTemporary) {
		t.Fatalf("Evaluate = %v, %v; want temperror wrapping ErrTemporary", res.Outcome, err)
	}
	if got := strings.Join(res.Reasons(), "; "); !strings.Contains(got, "_dmarc.example.org") {
		t.Errorf("Reasons() = %q, want the failing name", got)
	}
}

func TestDiscoverReportsTheTrail(t *testing.T) {
	r := MapResolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=reject", "v=spf1 -all"},
	}}
	for _, spec := range []Spec{RFC9989, RFC7489} {
		e := &Evaluator{Resolver: r, Spec: spec}
		d, err := e.Discover(context.Background(), "mail.Example.com")
		if err != nil {
			t.Fatal(err)
		}
		if d.PolicyDomain != "example.com" || !d.Inherited || d.OrgDomain != "example.com" {
			t.Errorf("%s: Discover = %+v; want inherited from example.com", spec, d)
		}
		if len(d.Lookups) < 2 || d.Lookups[0].Name != "_dmarc.mail.example.com" || !errors.Is(d.Lookups[0].Err, ErrNXDomain) || !d.Lookups[1].Found {
			t.Errorf("%s: Lookups = %+v", spec, d.Lookups)
		}
	}
}

// BenchmarkEvaluate measures a relaxed pass with a warm resolver: the path
// every legitimate message takes.
func BenchmarkEvaluate(b *testing.B) {
	r := MapResolver{TXT: map[string][]string{
		"_dmarc.example.com": {"v=DMARC1; p=reject; rua=mailto:dmarc@example.com"},
	}}
	for _, spec := range []Spec{RFC9989, RFC7489} {
		b.Run(spec.String(), func(b *testing.B) {
			e := &Evaluator{Resolver: r, Spec: spec}
			in := Input{
				FromDomain: "example.com",
				SPF:        SPF{Domain: "bounces.example.com", Result: AuthPass},
				DKIM:       []DKIM{{Domain: "example.com", Selector: "s1", Result: AuthPass}},
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if res, _ := e.Evaluate(ctx, in); res.Outcome != OutcomePass {
					b.Fatal(res.Outcome)
				}
			}
		})
	}
}
