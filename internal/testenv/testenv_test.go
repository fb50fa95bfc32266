package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatal instead of doing them.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, format
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, format
	runtime.Goexit()
}

func TestUnavailableSkipsOrFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		env  string
		fail bool
	}{{"", false}, {"0", false}, {"1", true}, {"yes", true}} {
		t.Setenv("DMARCD_CI", tc.env)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Unavailable(r, "no postfix")
		}()
		<-done
		if r.failed != tc.fail || r.skipped == tc.fail {
			t.Errorf("DMARCD_CI=%q: failed %v skipped %v", tc.env, r.failed, r.skipped)
		}
	}
}

func TestReferenceRootIsBesideTheRepository(t *testing.T) {
	t.Setenv("DMARCD_REFERENCE_DIR", "")
	want, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "reference"))
	if got := ReferenceRoot(); got != want {
		t.Errorf("ReferenceRoot() = %q, want %q", got, want)
	}
	t.Setenv("DMARCD_REFERENCE_DIR", "/srv/reference")
	if got := ReferenceRoot(); got != "/srv/reference" {
		t.Errorf("with DMARCD_REFERENCE_DIR: %q", got)
	}
}

func TestReferenceDirSkipsWithoutWhatIsNeeded(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DMARCD_REFERENCE_DIR", dir)
	for need, skip := range map[string]bool{"schemas": false, "reports": true} {
		r := &recorder{TB: t}
		var got string
		done := make(chan struct{})
		go func() {
			defer close(done)
			got = ReferenceDir(r, need)
		}()
		<-done
		if r.skipped != skip || r.failed || (!skip && got != dir) {
			t.Errorf("ReferenceDir(%q): %q, skipped %v, failed %v; want skipped %v", need, got, r.skipped, r.failed, skip)
		}
	}
}

func TestXmllintTellsValidFromInvalid(t *testing.T) {
	schema := filepath.Join(t.TempDir(), "n.xsd")
	xsd := `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="n" type="xs:integer"/></xs:schema>`
	if err := os.WriteFile(schema, []byte(xsd), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := Xmllint(t, schema, []byte("<n>42</n>")); msg != "" {
		t.Errorf("a valid document: %s", msg)
	}
	if msg := Xmllint(t, schema, []byte("<n>forty-two</n>")); msg == "" {
		t.Error("an invalid document validates")
	}
}
