// Package failuretest reads back, in tests, the failure reports dmarcd
// sends: through report/ingest, as the report's recipient would read it.
package failuretest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-message"

	"github.com/dmarcd/dmarcd/report/ingest"
)

// Report is one failure report as its recipient reads it.
type Report struct {
	*ingest.Failure
}

// Read parses msg, a whole report message, and fails the test unless it
// is a multipart/report of report-type feedback-report holding exactly one
// ARF authentication failure report that report/ingest accepts.
func Read(t testing.TB, msg []byte) Report {
	t.Helper()
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if mt, p, _ := e.Header.ContentType(); mt != "multipart/report" || p["report-type"] != "feedback-report" {
		t.Fatalf("Content-Type %s %v", mt, p)
	}
	var reports []*ingest.Failure
	err = ingest.ParseMessage(bytes.NewReader(msg), ingest.DefaultLimits(), func(it ingest.Item) error {
		if it.Err != nil {
			t.Errorf("report/ingest refuses the report: %v", it.Err)
		}
		if it.Failure != nil {
			reports = append(reports, it.Failure)
		}
		return nil
	})
	if err != nil || len(reports) != 1 {
		t.Fatalf("report/ingest read %d failure reports (%v), want 1", len(reports), err)
	}
	return Report{reports[0]}
}

// Field returns the value of the first feedback field called name (any
// case), unfolded; "" when there is none.
func (r Report) Field(name string) string {
	for _, f := range r.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}
