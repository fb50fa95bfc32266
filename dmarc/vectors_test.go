package dmarc_test

// TestVectors runs the DMARC evaluation vectors in testdata/dmarc/*.json.
//
// The vectors are data written from the text of RFC 9989 (DMARCbis) and
// RFC 7489, not from this package's output: each one names the section it
// follows in "ref". When a vector fails, the code is presumed wrong until the
// RFC text says otherwise.
//
// Every file holds a JSON array of vectors of this shape:
//
//	{
//	  "name":  "a subdomain inherits sp=quarantine from its organizational domain",
//	  "ref":   "RFC 9989 §4.10.1; RFC 7489 §6.6.3",
//	  "spec":  "rfc9989" | "rfc7489" | "both",
//	  "dns":   {"_dmarc.example.com": ["v=DMARC1; p=reject; sp=quarantine"],
//	            "mail.example.com": []},
//	  "fail":  {"_dmarc.example.org": "temporary"},
//	  "input": {"from": "mail.example.com",
//	            "spf":  {"domain": "example.com", "scope": "mfrom", "result": "pass"},
//	            "dkim": [{"domain": "x.example.com", "selector": "s1", "result": "pass"}],
//	            "draw": 42},
//	  "want":  {"result": "fail", "disposition": "quarantine", ...}
//	}
//
// dns is the zone as dmarc.MapResolver sees it: each key is a lower-case
// name without the trailing dot, its value the TXT records there (each one
// string, the character-strings already joined). A key with [] exists and
// has no TXT records (NODATA); a name that is not a key and has no key below
// it does not exist (NXDOMAIN, RFC 8020). Two markers are expanded in TXT
// strings, for what JSON cannot hold or should not spell out:
// "{{repeat N:S}}" is S repeated N times and "{{byte HH}}" is the single
// byte 0xHH (which need not be valid UTF-8).
//
// fail makes a name's lookups (LookupTXT for "_dmarc.…" names, Exists for
// the From domain) fail: "temporary" wraps dmarc.ErrTemporary, "untyped" is
// an error wrapping none of the package's sentinel errors (a resolver that
// breaks its contract), "nxdomain" wraps dmarc.ErrNXDomain.
//
// input.spf.scope is "mfrom" (the default) or "helo" (MAIL FROM was null and
// SPF checked the HELO identity); results are RFC 8601 keywords. draw is what
// the random source returns for RFC 7489 pct sampling, a number in [0, 100):
// a message is sampled in (the policy applies) when draw < pct. A vector
// without draw does not expect sampling, and the test fails if the
// evaluation asks for a random number.
//
// want.result and want.disposition are required. The other fields are
// checked only when present: policy ("none", "quarantine", "reject", or ""
// for no policy), policy_tag ("p", "sp", "np"), policy_domain, inherited,
// org_domain, from_domain (normalized), non_existent, spf_aligned,
// dkim_aligned, dkim_aligned_each (one bool per signature, in order),
// sampled_out, testing and several.
//
// A "both" vector runs once per spec and must hold for both; the subtests
// are TestVectors/<name>/<spec>.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/dmarc"
)

// minVectors is the least number of vectors the suite must hold.
const minVectors = 130

type vector struct {
	Name  string              `json:"name"`
	Ref   string              `json:"ref"`
	Spec  string              `json:"spec"`
	DNS   map[string][]string `json:"dns"`
	Fail  map[string]string   `json:"fail"`
	Input vectorInput         `json:"input"`
	Want  vectorWant          `json:"want"`

	file string
}

type vectorInput struct {
	From string       `json:"from"`
	SPF  *vectorSPF   `json:"spf"`
	DKIM []vectorDKIM `json:"dkim"`
	Draw *int         `json:"draw"`
}

type vectorSPF struct {
	Domain string `json:"domain"`
	Scope  string `json:"scope"`
	Result string `json:"result"`
}

type vectorDKIM struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	Result   string `json:"result"`
}

type vectorWant struct {
	Result          *string `json:"result"`
	Disposition     *string `json:"disposition"`
	Policy          *string `json:"policy"`
	PolicyTag       *string `json:"policy_tag"`
	PolicyDomain    *string `json:"policy_domain"`
	Inherited       *bool   `json:"inherited"`
	OrgDomain       *string `json:"org_domain"`
	FromDomain      *string `json:"from_domain"`
	NonExistent     *bool   `json:"non_existent"`
	SPFAligned      *bool   `json:"spf_aligned"`
	DKIMAligned     *bool   `json:"dkim_aligned"`
	DKIMAlignedEach []bool  `json:"dkim_aligned_each"`
	SampledOut      *bool   `json:"sampled_out"`
	Testing         *bool   `json:"testing"`
	Several         *bool   `json:"several"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "dmarc", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no vector files in testdata/dmarc")
	}
	sort.Strings(files)
	var all []vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var vs []vector
		if err := dec.Decode(&vs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range vs {
			vs[i].file = filepath.Base(f)
		}
		all = append(all, vs...)
	}
	return all
}

// checkVector rejects vectors that are malformed, so that a typo cannot
// turn a vector into one that silently checks nothing.
func checkVector(v vector) error {
	if strings.TrimSpace(v.Name) == "" {
		return errors.New("vector without a name")
	}
	if strings.TrimSpace(v.Ref) == "" {
		return errors.New("no ref: say which RFC section the vector follows")
	}
	if _, err := specsOf(v.Spec); err != nil {
		return err
	}
	if v.Want.Result == nil || v.Want.Disposition == nil {
		return errors.New("want.result and want.disposition are required")
	}
	switch *v.Want.Result {
	case "none", "pass", "fail", "temperror", "permerror":
	default:
		return fmt.Errorf("want.result %q is not a DMARC result", *v.Want.Result)
	}
	for name := range v.DNS {
		if name != strings.ToLower(name) || strings.HasSuffix(name, ".") || name == "" {
			return fmt.Errorf("dns key %q: want a lower-case name without the trailing dot", name)
		}
	}
	for name, kind := range v.Fail {
		if name != strings.ToLower(name) || strings.HasSuffix(name, ".") {
			return fmt.Errorf("fail key %q: want a lower-case name without the trailing dot", name)
		}
		if _, err := failure(kind); err != nil {
			return err
		}
	}
	if v.Input.SPF != nil {
		switch v.Input.SPF.Scope {
		case "", "mfrom", "helo":
		default:
			return fmt.Errorf("spf scope %q: want mfrom or helo", v.Input.SPF.Scope)
		}
	}
	if d := v.Input.Draw; d != nil && (*d < 0 || *d >= 100) {
		return fmt.Errorf("draw %d is outside [0, 100)", *d)
	}
	if w := v.Want.DKIMAlignedEach; w != nil && len(w) != len(v.Input.DKIM) {
		return fmt.Errorf("dkim_aligned_each has %d entries for %d signatures", len(w), len(v.Input.DKIM))
	}
	return nil
}

func specsOf(s string) ([]dmarc.Spec, error) {
	switch s {
	case "rfc9989":
		return []dmarc.Spec{dmarc.RFC9989}, nil
	case "rfc7489":
		return []dmarc.Spec{dmarc.RFC7489}, nil
	case "both":
		return []dmarc.Spec{dmarc.RFC9989, dmarc.RFC7489}, nil
	}
	return nil, fmt.Errorf("spec %q: want rfc9989, rfc7489 or both", s)
}

func failure(kind string) (error, error) {
	switch kind {
	case "temporary":
		return fmt.Errorf("test resolver: SERVFAIL: %w", dmarc.ErrTemporary), nil
	case "untyped":
		return errors.New("test resolver: connection refused"), nil
	case "nxdomain":
		return fmt.Errorf("test resolver: %w", dmarc.ErrNXDomain), nil
	}
	return nil, fmt.Errorf("fail kind %q: want temporary, untyped or nxdomain", kind)
}

var markerRE = regexp.MustCompile(`\{\{(repeat (\d+):([^}]*)|byte ([0-9a-fA-F]{2}))\}\}`)

// expand replaces the {{repeat N:S}} and {{byte HH}} markers.
func expand(s string) string {
	return markerRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := markerRE.FindStringSubmatch(m)
		if sub[4] != "" {
			b, _ := hex.DecodeString(sub[4])
			return string(b)
		}
		n, _ := strconv.Atoi(sub[2])
		return strings.Repeat(sub[3], n)
	})
}

func (v vector) resolver() dmarc.MapResolver {
	r := dmarc.MapResolver{TXT: make(map[string][]string, len(v.DNS))}
	for name, txts := range v.DNS {
		out := make([]string, len(txts))
		for i, t := range txts {
			out[i] = expand(t)
		}
		r.TXT[name] = out
	}
	if len(v.Fail) > 0 {
		r.Fail = make(map[string]error, len(v.Fail))
		for name, kind := range v.Fail {
			r.Fail[name], _ = failure(kind)
		}
	}
	return r
}

func (v vector) input(rnd dmarc.Rand) dmarc.Input {
	in := dmarc.Input{FromDomain: v.Input.From, Rand: rnd}
	if s := v.Input.SPF; s != nil {
		in.SPF = dmarc.SPF{Domain: s.Domain, Result: dmarc.AuthResult(s.Result)}
		if s.Scope == "helo" {
			in.SPF.Scope = dmarc.ScopeHelo
		}
	}
	for _, k := range v.Input.DKIM {
		in.DKIM = append(in.DKIM, dmarc.DKIM{Domain: k.Domain, Selector: k.Selector, Result: dmarc.AuthResult(k.Result)})
	}
	return in
}

// fakeRand returns the vector's draw, and fails the test when the vector
// has none: it did not expect pct sampling.
type fakeRand struct {
	t    *testing.T
	draw *int
}

func (r fakeRand) IntN(n int) int {
	r.t.Helper()
	if r.draw == nil {
		r.t.Errorf("pct sampling drew a random number, but the vector expects no sampling (no draw)")
		return n - 1
	}
	if *r.draw >= n {
		r.t.Errorf("IntN(%d) asked for, draw %d is out of range", n, *r.draw)
	}
	return *r.draw
}

func TestVectors(t *testing.T) {
	vectors := loadVectors(t)
	if len(vectors) < minVectors {
		t.Errorf("%d vectors, want at least %d", len(vectors), minVectors)
	}
	seen := make(map[string]string, len(vectors))
	for _, v := range vectors {
		if f, dup := seen[v.Name]; dup {
			t.Errorf("%s: vector name %q already used in %s", v.file, v.Name, f)
		}
		seen[v.Name] = v.file
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			if err := checkVector(v); err != nil {
				t.Fatalf("%s: malformed vector: %v", v.file, err)
			}
			specs, _ := specsOf(v.Spec)
			for _, spec := range specs {
				t.Run(spec.String(), func(t *testing.T) {
					runVector(t, v, spec)
				})
			}
		})
	}
}

func runVector(t *testing.T, v vector, spec dmarc.Spec) {
	e := &dmarc.Evaluator{Resolver: v.resolver(), Spec: spec}
	res, err := e.Evaluate(context.Background(), v.input(fakeRand{t: t, draw: v.Input.Draw}))

	w := v.Want
	var diffs []string
	str := func(field string, want *string, got string) {
		if want != nil && *want != got {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", field, got, *want))
		}
	}
	flag := func(field string, want *bool, got bool) {
		if want != nil && *want != got {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, *want))
		}
	}
	str("result", w.Result, res.Outcome.String())
	str("disposition", w.Disposition, res.Disposition.String())
	str("policy", w.Policy, res.Policy.String())
	str("policy_tag", w.PolicyTag, res.PolicyTag)
	str("policy_domain", w.PolicyDomain, res.PolicyDomain)
	flag("inherited", w.Inherited, res.Inherited)
	str("org_domain", w.OrgDomain, res.OrgDomain)
	str("from_domain", w.FromDomain, res.FromDomain)
	flag("non_existent", w.NonExistent, res.NonExistent)
	flag("spf_aligned", w.SPFAligned, res.SPFAligned)
	flag("dkim_aligned", w.DKIMAligned, res.DKIMAligned)
	flag("sampled_out", w.SampledOut, res.SampledOut)
	flag("testing", w.Testing, res.Testing)
	flag("several", w.Several, res.Several)
	if w.DKIMAlignedEach != nil {
		got := make([]bool, len(res.DKIM))
		for i, id := range res.DKIM {
			got[i] = id.Aligned
		}
		if fmt.Sprint(got) != fmt.Sprint(w.DKIMAlignedEach) {
			diffs = append(diffs, fmt.Sprintf("dkim_aligned_each = %v, want %v", got, w.DKIMAlignedEach))
		}
	}

	// The error contract of Evaluate: an error exactly for temperror and
	// permerror, ErrTemporary exactly for temperror, and the same error in
	// Result.Err.
	isErr := res.Outcome == dmarc.OutcomeTempError || res.Outcome == dmarc.OutcomePermError
	switch {
	case isErr && err == nil:
		diffs = append(diffs, fmt.Sprintf("result %s but Evaluate returned no error", res.Outcome))
	case !isErr && err != nil:
		diffs = append(diffs, fmt.Sprintf("result %s but Evaluate returned error %v", res.Outcome, err))
	case res.Outcome == dmarc.OutcomeTempError && !errors.Is(err, dmarc.ErrTemporary):
		diffs = append(diffs, fmt.Sprintf("temperror with an error that is not ErrTemporary: %v", err))
	case res.Outcome == dmarc.OutcomePermError && errors.Is(err, dmarc.ErrTemporary):
		diffs = append(diffs, fmt.Sprintf("permerror with an ErrTemporary error: %v", err))
	}
	if (err == nil) != (res.Err == nil) {
		diffs = append(diffs, fmt.Sprintf("Evaluate error %v but Result.Err %v", err, res.Err))
	}
	if res.Outcome != dmarc.OutcomeFail && res.Disposition != dmarc.DispositionNone {
		diffs = append(diffs, fmt.Sprintf("disposition %s with result %s: only fail has a disposition", res.Disposition, res.Outcome))
	}
	if res.Outcome == dmarc.OutcomePass && !res.SPFAligned && !res.DKIMAligned {
		diffs = append(diffs, "pass without an aligned identifier")
	}

	if len(diffs) > 0 {
		t.Errorf("%s (%s, %s):\n\t%s\n\tgot: %s dis=%s policy=%q(%s) at %q inherited=%v org=%q err=%v\n\treasons: %q",
			v.file, v.Ref, spec, strings.Join(diffs, "\n\t"),
			res.Outcome, res.Disposition, res.Policy, res.PolicyTag, res.PolicyDomain, res.Inherited, res.OrgDomain, err, res.Reasons())
	}
}
