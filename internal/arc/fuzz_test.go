package arc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/arc/arctest"
)

// fuzzKey is a fixed key, so that seeds sealed with it keep verifying
// across runs and the fuzzer can reach the passing paths.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5a}, ed25519.SeedSize))

// fuzzLookup serves fuzzKey for every selector, except that names
// starting with "nx." do not exist and names starting with "tmp." fail
// temporarily.
func fuzzLookup(_ context.Context, name string) ([]string, error) {
	switch {
	case strings.HasPrefix(name, "nx."):
		return nil, dmarc.ErrNXDomain
	case strings.HasPrefix(name, "tmp."):
		return nil, fmt.Errorf("lookup %s: %w", name, dmarc.ErrTemporary)
	}
	pub := fuzzKey.Public().(ed25519.PublicKey)
	return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
}

// headerFields splits a header block into fields, folds kept.
func headerFields(block string) []Field {
	var fields []Field
	for _, line := range strings.SplitAfter(block, "\n") {
		if line == "" {
			continue
		}
		if len(fields) > 0 && (line[0] == ' ' || line[0] == '\t') {
			fields[len(fields)-1].Raw += line
			continue
		}
		fields = append(fields, Field{Raw: line})
	}
	return fields
}

// headerBlock is the header of m as FuzzVerify's seeds write it: each
// field and its CRLF.
func headerBlock(m *arctest.Message) string {
	head, _, _ := strings.Cut(string(m.Bytes()), "\r\n\r\n")
	return head + "\r\n"
}

// FuzzVerify feeds arbitrary header blocks and bodies to Verify and checks
// that it never panics and that what it returns is consistent: a status
// from the three or a temporary error, none exactly when there are no ARC
// fields, a passing chain with sets 1..N in order and a possible
// oldest-pass, and the same outcome when the body arrives in small chunks.
func FuzzVerify(f *testing.F) {
	seal := func(m *arctest.Message, s *arctest.Sealer, cv string, results ...string) *arctest.Message {
		s.Key = fuzzKey
		s.Seal(f, m, cv, results...)
		return m
	}
	one := seal(newMessage(), &arctest.Sealer{Domain: "gw.example.net", Selector: "s", AuthServID: "mx.example.net"}, CVNone, resultsAtGateway...)
	three := seal(one.Clone(), &arctest.Sealer{Domain: "lists.example.org", Selector: "s", AuthServID: "lists.example.org"}, CVPass, resultsAtList...)
	listRewrite(three)
	three = seal(three, &arctest.Sealer{Domain: "forwarder.example", Selector: "s", AuthServID: "mx.forwarder.example", Canon: "simple/relaxed"}, CVPass, resultsAtForwarder...)
	temp := seal(newMessage(), &arctest.Sealer{Domain: "example.net", Selector: "tmp", AuthServID: "mx.example.net"}, CVNone, resultsAtGateway...)
	for _, m := range []*arctest.Message{newMessage(), one, three, temp} {
		f.Add(headerBlock(m), []byte(m.Body))
	}
	for _, sc := range loadSuite(f) {
		for i, tc := range sc.Tests {
			if i%4 == 0 {
				head, body, _ := strings.Cut(tc.Message, "\n\n")
				f.Add(head+"\n", []byte(body))
			}
		}
	}
	f.Add("ARC-Seal: i=1; cv=none; a=rsa-sha256; d=x; s=y; b=\r\n", []byte{})
	f.Add("ARC-Authentication-Results: i=50;\r\nARC-Seal: ;;\r\nARC-Message-Signature: b=\r\n", []byte("\r\r\n\n \t"))

	f.Fuzz(func(t *testing.T, header string, body []byte) {
		fields := headerFields(header)
		res, err := Verify(context.Background(), fields, bytes.NewReader(body), fuzzLookup)
		if err != nil {
			if !errors.Is(err, dmarc.ErrTemporary) || res.CV != "" {
				t.Fatalf("error %v with CV %q; want a temporary error and no CV", err, res.CV)
			}
		} else if res.CV != CVNone && res.CV != CVPass && res.CV != CVFail {
			t.Fatalf("CV %q", res.CV)
		}

		arcFields := 0
		for _, fl := range fields {
			name, _ := fl.split()
			switch strings.ToLower(strings.TrimRight(name, " \t")) {
			case nameAAR, nameAMS, nameAS:
				arcFields++
			}
		}
		if (res.CV == CVNone) != (arcFields == 0) {
			t.Fatalf("CV %q with %d ARC fields", res.CV, arcFields)
		}
		if res.CV == CVPass {
			n := len(res.Sets)
			if n == 0 || n > maxSets || arcFields != 3*n {
				t.Fatalf("passing chain of %d sets from %d ARC fields", n, arcFields)
			}
			for i, s := range res.Sets {
				if s.Instance != i+1 {
					t.Fatalf("set %d has instance %d", i, s.Instance)
				}
			}
			if res.OldestPass == 1 || res.OldestPass < 0 || res.OldestPass > n {
				t.Fatalf("oldest-pass %d in a chain of %d", res.OldestPass, n)
			}
		} else if res.OldestPass != 0 {
			t.Fatalf("oldest-pass %d for CV %q", res.OldestPass, res.CV)
		}

		v := NewVerifier(fields)
		for b := body; len(b) > 0; {
			n := min(3, len(b))
			v.Write(b[:n])
			b = b[n:]
		}
		res2, err2 := v.Verify(context.Background(), fuzzLookup)
		if res2.CV != res.CV || res2.Reason != res.Reason || res2.OldestPass != res.OldestPass || (err == nil) != (err2 == nil) {
			t.Fatalf("in chunks: %q %q %d %v; at once: %q %q %d %v", res2.CV, res2.Reason, res2.OldestPass, err2, res.CV, res.Reason, res.OldestPass, err)
		}
	})
}
