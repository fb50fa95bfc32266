package aggregate

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// inCI reports whether DMARCD_CI asks tests that need a real component to
// fail, not skip, when it is missing (.ci/run sets it).
func inCI() bool {
	v := os.Getenv("DMARCD_CI")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// unavailable skips the test, or fails it under DMARCD_CI.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s; DMARCD_CI is set, so this fails instead of skipping", msg)
	}
	t.Skipf("%s; skipping (under DMARCD_CI this fails)", msg)
}

// referenceDir returns the shared reference folder: $DMARCD_REFERENCE_DIR,
// or ../../../shared/reference from this package (beside the repository),
// and skips the test where it is absent.
func referenceDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("DMARCD_REFERENCE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "reference")
	}
	if _, err := os.Stat(filepath.Join(dir, "schemas")); err != nil {
		// The reference folder belongs beside the repository, not in it;
		// where it is absent (CI included) the schema checks skip, as its
		// README asks.
		t.Skipf("reference material not found at %s (set DMARCD_REFERENCE_DIR); skipping the schema check", dir)
	}
	return dir
}

// schemaPath returns the XSD a format's reports must validate against.
func schemaPath(t testing.TB, f Format) string {
	t.Helper()
	name := "rfc7489.xsd"
	if f == RFC9990 {
		name = "rfc9990-draft32-aggregate.xsd"
	}
	p := filepath.Join(referenceDir(t), "schemas", name)
	if _, err := os.Stat(p); err != nil {
		unavailable(t, "schema missing: "+p)
	}
	return p
}

// xmllint validates doc against the format's schema with libxml2's
// xmllint and returns its complaint, "" when the document is valid.
func xmllint(t testing.TB, f Format, doc []byte) string {
	t.Helper()
	return xmllintSchema(t, schemaPath(t, f), doc)
}

func xmllintSchema(t testing.TB, schema string, doc []byte) string {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		unavailable(t, "xmllint not installed (Debian: apt-get install libxml2-utils)")
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

// The report as encoding/xml reads it back. Tags without a namespace match
// elements in any namespace, so one set of types reads both formats.
type feedbackXML struct {
	XMLName  xml.Name `xml:"feedback"`
	Version  string   `xml:"version"`
	Metadata struct {
		OrgName          string   `xml:"org_name"`
		Email            string   `xml:"email"`
		ExtraContactInfo string   `xml:"extra_contact_info"`
		ReportID         string   `xml:"report_id"`
		Begin            int64    `xml:"date_range>begin"`
		End              int64    `xml:"date_range>end"`
		Errors           []string `xml:"error"`
		Generator        string   `xml:"generator"`
	} `xml:"report_metadata"`
	Policy struct {
		Domain          string `xml:"domain"`
		DiscoveryMethod string `xml:"discovery_method"`
		ADKIM           string `xml:"adkim"`
		ASPF            string `xml:"aspf"`
		P               string `xml:"p"`
		SP              string `xml:"sp"`
		NP              string `xml:"np"`
		Pct             string `xml:"pct"`
		FO              string `xml:"fo"`
		Testing         string `xml:"testing"`
	} `xml:"policy_published"`
	Records []recordXML `xml:"record"`
}

type recordXML struct {
	SourceIP    string      `xml:"row>source_ip"`
	Count       int64       `xml:"row>count"`
	Disposition string      `xml:"row>policy_evaluated>disposition"`
	DKIM        string      `xml:"row>policy_evaluated>dkim"`
	SPF         string      `xml:"row>policy_evaluated>spf"`
	Reasons     []reasonXML `xml:"row>policy_evaluated>reason"`
	// Pointers tell an absent element from an empty one.
	HeaderFrom   *string   `xml:"identifiers>header_from"`
	EnvelopeFrom *string   `xml:"identifiers>envelope_from"`
	EnvelopeTo   *string   `xml:"identifiers>envelope_to"`
	AuthDKIM     []dkimXML `xml:"auth_results>dkim"`
	AuthSPF      []spfXML  `xml:"auth_results>spf"`
}

type reasonXML struct {
	Type    string  `xml:"type"`
	Comment *string `xml:"comment"`
}

type dkimXML struct {
	Domain   string  `xml:"domain"`
	Selector *string `xml:"selector"`
	Result   string  `xml:"result"`
}

type spfXML struct {
	Domain string `xml:"domain"`
	Scope  string `xml:"scope"`
	Result string `xml:"result"`
}

// parse reads a report back with encoding/xml, strictly.
func parse(t testing.TB, doc []byte) feedbackXML {
	t.Helper()
	var fb feedbackXML
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	if err := d.Decode(&fb); err != nil {
		t.Fatalf("encoding/xml cannot read the report: %v\n%s", err, doc)
	}
	return fb
}

func ptr(s *string) string {
	if s == nil {
		return "<absent>"
	}
	return *s
}
