// Package testenv tells tests what to expect of the machine they run on:
// whether they run in CI, where a component they need (Postfix, xmllint,
// PostgreSQL, ...) must be there, so that its absence fails them instead
// of skipping them; and where the shared reference material is.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// InCI reports whether DMARCD_CI asks tests that need a real component to
// fail, not skip, when it is missing. .ci/run sets it; "", "0" and
// "false" leave it off.
func InCI() bool {
	v := os.Getenv("DMARCD_CI")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// Unavailable ends a test that needs something this machine lacks: it
// skips it, or fails it under DMARCD_CI.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s; DMARCD_CI is set, so this fails instead of skipping", msg)
	}
	t.Skipf("%s; skipping (under DMARCD_CI this fails)", msg)
}

// ReferenceRoot returns the folder of the shared reference material
// (schemas, real reports): $DMARCD_REFERENCE_DIR, or shared/reference
// beside the repository. It may not exist.
func ReferenceRoot() string {
	if dir := os.Getenv("DMARCD_REFERENCE_DIR"); dir != "" {
		return dir
	}
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "reference")
	}
	// Tests run in their package's folder: go up to the module's root.
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "reference")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "..", "shared", "reference")
		}
	}
}

// ReferenceDir returns ReferenceRoot, and skips the test where it lacks
// need (a file or folder inside it, such as "schemas"): the reference
// material lives beside the repository, not in it, and its README asks
// tests to skip, with a clear message, where it is absent. .ci/run points
// DMARCD_REFERENCE_DIR at it.
func ReferenceDir(t testing.TB, need string) string {
	t.Helper()
	dir := ReferenceRoot()
	if _, err := os.Stat(filepath.Join(dir, need)); err != nil {
		t.Skipf("reference material %s not found in %s (set DMARCD_REFERENCE_DIR); skipping", need, dir)
	}
	return dir
}

// Xmllint validates doc against the XML schema at the path schema with
// libxml2's xmllint and returns its complaint, "" when doc is valid.
// Without xmllint the test is Unavailable.
func Xmllint(t testing.TB, schema string, doc []byte) string {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		Unavailable(t, "xmllint is not installed (apt-get install libxml2-utils)")
	}
	file := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--noout", "--schema", schema, file).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)) + " (" + err.Error() + ")"
	}
	return ""
}
