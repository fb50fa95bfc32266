package authres

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the parser's output")

// golden is what a testdata/*.golden.json file holds for the .txt beside it.
type golden struct {
	Header    *Header `json:"header"`
	Error     string  `json:"error,omitempty"`
	Formatted string  `json:"formatted,omitempty"`
}

func corpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("corpus has %d files, want at least 40", len(files))
	}
	return files
}

func parseGolden(value string) golden {
	h, err := Parse(value)
	g := golden{Header: h}
	if err != nil {
		g.Error = err.Error()
	}
	if h != nil {
		g.Formatted = h.String()
	}
	return g
}

// TestCorpus parses every testdata/*.txt, real header values as producers
// write them plus hostile ones, and compares with the golden JSON beside it.
// Run "go test ./internal/authres -update" after a deliberate change and
// review the diff.
func TestCorpus(t *testing.T) {
	for _, file := range corpus(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := parseGolden(string(raw))
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			goldenFile := strings.TrimSuffix(file, ".txt") + ".golden.json"
			if *update {
				if err := os.WriteFile(goldenFile, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenFile)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("Parse(%q) differs from %s:\ngot:\n%s\nwant:\n%s", raw, goldenFile, out, want)
			}
			// Whatever parsed must format to something that parses back to
			// the same results: the round trip the milter relies on when it
			// writes its own header.
			if got.Header != nil && len(got.Header.Results) > 0 {
				h2, err2 := Parse(got.Formatted)
				// A field without authserv-id formats without one, and that is
				// the only error its formatted form may have.
				if err2 != nil && !(got.Header.AuthServID == "" && err2 == ErrNoAuthServID) {
					t.Errorf("Parse(String()) = %v for %q", err2, got.Formatted)
				}
				if h2 != nil && !reflect.DeepEqual(h2.Results, got.Header.Results) {
					t.Errorf("round trip changed results:\n got %+v\nwant %+v", h2.Results, got.Header.Results)
				}
			}
		})
	}
}
