package aggregate

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// schemaPath returns the XSD a format's reports must validate against.
func schemaPath(t testing.TB, f Format) string {
	t.Helper()
	name := "rfc7489.xsd"
	if f == RFC9990 {
		name = "rfc9990-draft32-aggregate.xsd"
	}
	p := filepath.Join(testenv.ReferenceDir(t, "schemas"), "schemas", name)
	if _, err := os.Stat(p); err != nil {
		testenv.Unavailable(t, "schema missing: %s", p)
	}
	return p
}

// xmllint validates doc against the format's schema with libxml2's
// xmllint and returns its complaint, "" when the document is valid.
func xmllint(t testing.TB, f Format, doc []byte) string {
	t.Helper()
	return testenv.Xmllint(t, schemaPath(t, f), doc)
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
