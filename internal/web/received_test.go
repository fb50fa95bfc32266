package web

import (
	"context"
	"reflect"
	"testing"
)

// TestTheStoreAndMemoryAgree reads the fixture through report/received
// from a SQLite store, as the daemon does, and through MemorySource: the
// dashboard must show the same numbers either way. (The store does not
// say which domains a source sent for, and counts reporters' messages
// and compliant ones only.)
func TestTheStoreAndMemoryAgree(t *testing.T) {
	ctx := context.Background()
	db := importedSource(t)
	mem := NewMemorySource(fixtureReports(t)...)
	for _, q := range []struct {
		name     string
		q        Query
		messages int64
	}{
		{"every domain over 15 days", Query{From: day(11, 14), To: day(11, 29)}, 2918},
		{"one domain over 15 days", Query{Domain: "example.com", From: day(11, 14), To: day(11, 29)}, 2838},
		{"one day", Query{Domain: "example.org", From: day(11, 27), To: day(11, 28)}, 80},
		{"90 days", Query{From: day(8, 31), To: day(11, 29)}, 2918 + 999999},
		{"a domain nobody reported on", Query{Domain: "example.net", From: day(11, 14), To: day(11, 29)}, 0},
	} {
		t.Run(q.name, func(t *testing.T) {
			check := func(what string, a, b any, errA, errB error) {
				t.Helper()
				if errA != nil || errB != nil {
					t.Fatalf("%s: %v, %v", what, errA, errB)
				}
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s:\nstore  %+v\nmemory %+v", what, a, b)
				}
			}
			s1, e1 := db.Summary(ctx, q.q)
			s2, e2 := mem.Summary(ctx, q.q)
			check("summary", s1, s2, e1, e2)
			if s1.Totals.Messages != q.messages {
				t.Errorf("the store counts %d messages, want %d", s1.Totals.Messages, q.messages)
			}
			d1, e1 := db.Domains(ctx, q.q)
			d2, e2 := mem.Domains(ctx, q.q)
			check("domains", d1, d2, e1, e2)
			for _, failing := range []bool{false, true} {
				sq := q.q
				sq.Failing = failing
				r1, e1 := db.Sources(ctx, sq)
				r2, e2 := mem.Sources(ctx, sq)
				mem := make([]SourceRow, len(r2))
				for i, r := range r2 {
					r.Domains = nil
					mem[i] = r
				}
				// Names come from the store's lookups.
				for i := range r1 {
					if want := testNames[r1[i].IP.String()]; r1[i].PTR != want {
						t.Errorf("%s is named %q, want %q", r1[i].IP, r1[i].PTR, want)
					}
					r1[i].PTR = ""
				}
				check("sources", r1, mem, e1, e2)
			}
			p1, e1 := db.Reporters(ctx, q.q)
			p2, e2 := mem.Reporters(ctx, q.q)
			for i := range p2 {
				p2[i].Counts = Counts{Messages: p2[i].Messages, Compliant: p2[i].Compliant}
			}
			check("reporters", p1, p2, e1, e2)
		})
	}
	t1, e1 := db.Totals(ctx)
	t2, e2 := mem.Totals(ctx)
	if e1 != nil || e2 != nil || t1 != t2 {
		t.Errorf("totals: store %+v, memory %+v (%v, %v)", t1, t2, e1, e2)
	}
}
