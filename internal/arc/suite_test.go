package arc

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/dmarc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The validation half of ValiMail's ARC test suite
// (github.com/ValiMail/arc_test_suite, MIT licence, see
// testdata/arc_test_suite/README.md): messages signed by another
// implementation (dkimpy), their DNS records and the chain status expected.

type suiteScenario struct {
	Description string            `json:"description"`
	TXTRecords  map[string]string `json:"txt_records"`
	Tests       []suiteTest       `json:"tests"`
}

type suiteTest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Message     string `json:"message"`
	CV          string `json:"cv"`
}

const suiteDir = "testdata/arc_test_suite"

func loadSuite(t testing.TB) []suiteScenario {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(suiteDir, "validation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var scenarios []suiteScenario
	if err := json.Unmarshal(raw, &scenarios); err != nil {
		t.Fatal(err)
	}
	return scenarios
}

// splitMessage reads a message written with LF line endings, as the suite
// writes them, into header fields (Raw, folds as CRLF) and a CRLF body.
func splitMessage(msg string) ([]Field, string) {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	head, body, found := strings.Cut(msg, "\n\n")
	if !found {
		if strings.HasPrefix(msg, "\n") {
			head, body = "", msg[1:]
		} else {
			head, body = strings.TrimSuffix(msg, "\n"), ""
		}
	}
	var fields []Field
	if head != "" {
		for _, line := range strings.Split(head, "\n") {
			if len(fields) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
				fields[len(fields)-1].Raw += "\r\n" + line
				continue
			}
			fields = append(fields, Field{Raw: line})
		}
	}
	return fields, strings.ReplaceAll(body, "\n", "\r\n")
}

// asMilter turns Raw fields into what a milter behind Postfix gets (one
// space after the colon eaten, LF folds), rebuilt with MilterField.
func asMilter(fields []Field) []Field {
	out := make([]Field, len(fields))
	for i, f := range fields {
		name, value, _ := strings.Cut(f.Raw, ":")
		value = strings.TrimPrefix(value, " ")
		out[i] = MilterField(name, strings.ReplaceAll(value, "\r\n", "\n"), false)
	}
	return out
}

// TestValiMailSuite runs every validation test of the suite, once with the
// fields as received and once as a milter gets them, and compares the
// outcome (status, oldest-pass and our reason) with
// testdata/arc_test_suite/results.golden, which -update rewrites.
//
// The suite writes an empty cv for chains already failed (cv=fail in the
// newest seal), meaning "do not seal further"; RFC 8617 §5.2 step 2 makes
// that "fail", which is what is expected here.
func TestValiMailSuite(t *testing.T) {
	var golden bytes.Buffer
	for _, sc := range loadSuite(t) {
		txt := map[string][]string{}
		for name, rec := range sc.TXTRecords {
			txt[strings.ToLower(name)] = []string{rec}
		}
		lookup := dmarc.MapResolver{TXT: txt}.LookupTXT
		for _, tc := range sc.Tests {
			t.Run(tc.Name, func(t *testing.T) {
				want := strings.ToLower(strings.TrimSpace(tc.CV))
				if want == "" {
					want = CVFail
				}
				fields, body := splitMessage(tc.Message)
				res, err := Verify(context.Background(), fields, strings.NewReader(body), lookup)
				if err != nil {
					t.Fatalf("%s: error %v", tc.Description, err)
				}
				if res.CV != want {
					t.Errorf("%s: CV %q, want %q (reason %q)", tc.Description, res.CV, want, res.Reason)
				}
				res2, err := Verify(context.Background(), asMilter(fields), strings.NewReader(body), lookup)
				if err != nil || res2.CV != res.CV || res2.Reason != res.Reason {
					t.Errorf("%s: with the milter's fields CV %q (%q), error %v; with Raw %q (%q)", tc.Description, res2.CV, res2.Reason, err, res.CV, res.Reason)
				}
				fmt.Fprintf(&golden, "%s\t%s\t%d\t%s\n", tc.Name, res.CV, res.OldestPass, res.Reason)
			})
		}
	}
	path := filepath.Join(suiteDir, "results.golden")
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got := golden.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			g, w := "", ""
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("results.golden line %d:\n got  %q\n want %q", i+1, g, w)
			}
		}
	}
}
