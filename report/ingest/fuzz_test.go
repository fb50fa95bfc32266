package ingest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// fuzzLimits keeps each fuzz input cheap.
func fuzzLimits() Limits {
	l := DefaultLimits()
	l.MaxCompressed = 256 << 10
	l.MaxDecompressed = 1 << 20
	l.MaxMessage = 1 << 20
	l.MaxRecords = 500
	return l
}

// addSeeds adds our testdata, and the reference reports where present,
// to the fuzz corpus; ext filters by name.
func addSeeds(f *testing.F, keep func(name string) bool) {
	dirs := []string{"testdata"}
	ref := testenv.ReferenceRoot()
	dirs = append(dirs, filepath.Join(ref, "reports", "aggregate"), filepath.Join(ref, "reports", "failure"))
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !keep(e.Name()) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
}

func FuzzParseAggregate(f *testing.F) {
	addSeeds(f, func(n string) bool { return filepath.Ext(n) == ".xml" })
	for _, s := range []string{
		"", "<feedback/>", doc("", "", "", ""), doc(`<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">`, "", "", rec("2001:db8::1", "7")),
		`<?xml version="1.0" encoding="ISO-8859-1"?><feedback>` + "\xe9", "<x><feedback></feedback>", "<!DOCTYPE x>",
	} {
		f.Add([]byte(s))
	}
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAggregate(bytes.NewReader(data), lim)
		if (a == nil) == (err == nil) {
			t.Fatalf("report %v and error %v", a, err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind == nil {
				t.Fatalf("error %v is no classified *Error", err)
			}
			return
		}
		checkAggregate(t, "fuzz", a)
		if len(a.Records) > lim.MaxRecords {
			t.Fatalf("%d records past MaxRecords", len(a.Records))
		}
		if len(a.Warnings) > maxWarnings+1 {
			t.Fatalf("%d warnings", len(a.Warnings))
		}
		// Deterministic.
		b, err := ParseAggregate(bytes.NewReader(data), lim)
		if err != nil || len(b.Records) != len(a.Records) || b.Key() != a.Key() {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	addSeeds(f, func(n string) bool { return filepath.Ext(n) == ".eml" })
	for _, s := range []string{
		"", "From: a\n\nhello", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/feedback-report\n\nFeedback-Type: auth-failure\n--b--\n",
		"Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nFrom: x\n\n--b--\n",
		"Content-Type: message/rfc822\n\nContent-Type: application/gzip\n\n\x1f\x8b",
		"Content-Type: application/zip\n\nPK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	} {
		f.Add([]byte(s))
	}
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		items := 0
		err := ParseMessage(bytes.NewReader(data), lim, func(it Item) error {
			items++
			checkItem(t, it)
			return nil
		})
		if err != nil {
			t.Fatalf("ParseMessage returned %v: only fn's errors may come back", err)
		}
		if items == 0 {
			t.Fatalf("no item: a message yields at least one")
		}
	})
}
