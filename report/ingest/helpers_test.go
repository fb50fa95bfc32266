package ingest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// walkAll collects the items Walk yields for path.
func walkAll(t testing.TB, path string, lim Limits) []Item {
	t.Helper()
	var items []Item
	if err := Walk(path, lim, func(it Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		t.Fatalf("Walk(%s): %v", path, err)
	}
	for _, it := range items {
		checkItem(t, it)
	}
	return items
}

// messageAll collects the items ParseMessage yields.
func messageAll(t testing.TB, data []byte, lim Limits) []Item {
	t.Helper()
	var items []Item
	if err := ParseMessage(bytes.NewReader(data), lim, func(it Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		t.Fatalf("ParseMessage: %v", err)
	}
	for _, it := range items {
		checkItem(t, it)
	}
	return items
}

// checkItem checks what every item must satisfy: exactly one of the three
// set, an *Error with a class for refusals, and a sound report otherwise.
func checkItem(t testing.TB, it Item) {
	t.Helper()
	n := 0
	if it.Aggregate != nil {
		n++
	}
	if it.Failure != nil {
		n++
	}
	if it.Err != nil {
		n++
		var e *Error
		if !errors.As(it.Err, &e) {
			t.Errorf("%s: error %v is no *Error", it.Source, it.Err)
		} else if e.Kind == nil {
			t.Errorf("%s: error %v has no class", it.Source, it.Err)
		}
	}
	if n != 1 {
		t.Errorf("%s: %d of Aggregate, Failure, Err set, want 1", it.Source, n)
	}
	if a := it.Aggregate; a != nil {
		checkAggregate(t, it.Source, a)
	}
}

func checkAggregate(t testing.TB, src string, a *Aggregate) {
	t.Helper()
	if a.ReportID == "" {
		t.Errorf("%s: empty report_id accepted", src)
	}
	if a.End.Before(a.Begin) {
		t.Errorf("%s: end %v before begin %v accepted", src, a.End, a.Begin)
	}
	if a.Policy.Domain == "" {
		t.Errorf("%s: no policy domain accepted", src)
	}
	switch a.Format {
	case FormatRFC7489, FormatRFC9990, FormatDraft:
	default:
		t.Errorf("%s: format %q", src, a.Format)
	}
	for i, r := range a.Records {
		if !r.SourceIP.IsValid() || r.SourceIP.Zone() != "" || r.SourceIP.Is4In6() {
			t.Errorf("%s: record %d: source ip %v", src, i, r.SourceIP)
		}
		if r.Count < 0 {
			t.Errorf("%s: record %d: count %d", src, i, r.Count)
		}
	}
}

// gzipBytes compresses data.
func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	if _, err := z.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gzipBest compresses data as gzip -9 does.
func gzipBest(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	z, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := z.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zipBytes builds a zip of the given members (name, content pairs).
func zipBytes(t testing.TB, members ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for i := 0; i+1 < len(members); i += 2 {
		w, err := z.Create(members[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(members[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantErr checks that err is an *Error of class kind whose text holds
// each of the fragments.
func wantErr(t testing.TB, err error, kind error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q is not %v", err, kind)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q lacks %q", err, f)
		}
	}
}

// hasWarning reports whether one of ws contains fragment.
func hasWarning(ws []string, fragment string) bool {
	for _, w := range ws {
		if strings.Contains(w, fragment) {
			return true
		}
	}
	return false
}

func errLine(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
