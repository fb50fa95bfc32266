package web

import (
	"encoding/json"
	"net/http"
	"time"
)

// The JSON API: the dashboard's numbers for scripts. Every endpoint takes
// GET, answers application/json, and takes the query parameters
//
//	domain   the policy domain; absent or empty for every domain
//	days     the last N days, today (UTC) included: 1 to 366, default 15
//
// /api/sources also takes failing=true (only sources with failing
// messages, most failing first) and limit (1 to 10000, default 100).
// A bad parameter gets 400 with {"error": "..."}; a store that cannot be
// read 500 likewise. Counts are objects of the fields of apiCounts.

// apiCounts are Counts with what the dashboard derives from them.
type apiCounts struct {
	Messages  int64 `json:"messages"`
	Compliant int64 `json:"compliant"`
	// Compliance is the share of compliant messages, 0 to 1.
	Compliance float64 `json:"compliance"`
	// Failed counts the messages that failed DMARC and were delivered.
	Failed      int64 `json:"failed"`
	Quarantined int64 `json:"quarantined"`
	Rejected    int64 `json:"rejected"`
	SPFPass     int64 `json:"spf_pass"`
	SPFFail     int64 `json:"spf_fail"`
	DKIMPass    int64 `json:"dkim_pass"`
	DKIMFail    int64 `json:"dkim_fail"`
}

func withDerived(c Counts) apiCounts {
	return apiCounts{
		Messages: c.Messages, Compliant: c.Compliant, Compliance: c.Compliance(),
		Failed: c.Failed(), Quarantined: c.Quarantined, Rejected: c.Rejected,
		SPFPass: c.SPFPass, SPFFail: c.SPFFail, DKIMPass: c.DKIMPass, DKIMFail: c.DKIMFail,
	}
}

// apiWindow is the days an answer covers.
type apiWindow struct {
	Domain string    `json:"domain"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"` // excluded
	Days   int       `json:"days"`
}

func window(q Query) apiWindow {
	return apiWindow{Domain: q.Domain, From: q.From, To: q.To, Days: q.Days()}
}

// apiIndex lists the endpoints: GET /api/.
func (s *Server) apiIndex(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"/api/domains":   "policy domains with reports, and their counts in the window (?days=&until=)",
		"/api/summary":   "totals and per-day counts (?domain=&days=&until=)",
		"/api/sources":   "sending addresses and their counts (?domain=&days=&until=&failing=&limit=)",
		"/api/reporters": "organisations that sent reports (?domain=&days=&until=)",
	})
}

// apiDomains serves GET /api/domains:
//
//	{"from": ..., "to": ..., "days": 15, "domains": [{"domain": "example.com",
//	  "reports": 3, "last_report": ..., "messages": 10, "compliant": 9, ...}]}
func (s *Server) apiDomains(w http.ResponseWriter, r *http.Request) {
	q, src, ok := s.apiQuery(w, r)
	if !ok {
		return
	}
	type domain struct {
		Domain  string    `json:"domain"`
		Reports int64     `json:"reports"`
		Last    time.Time `json:"last_report,omitzero"`
		apiCounts
	}
	out := struct {
		apiWindow
		Domains []domain `json:"domains"`
	}{apiWindow: window(q), Domains: []domain{}}
	if src != nil {
		rows, err := src.Domains(r.Context(), q)
		if err != nil {
			s.apiError(w, "domains", err)
			return
		}
		for _, d := range rows {
			out.Domains = append(out.Domains, domain{d.Domain, d.Reports, d.Last, withDerived(d.Counts)})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiSummary serves GET /api/summary:
//
//	{"domain": "", "from": ..., "to": ..., "days": 15, "reports": 12,
//	 "reporters": 2, "totals": {counts}, "daily": [{"date": ..., counts}]}
func (s *Server) apiSummary(w http.ResponseWriter, r *http.Request) {
	q, src, ok := s.apiQuery(w, r)
	if !ok {
		return
	}
	sum := emptySummary(q)
	if src != nil {
		var err error
		if sum, err = src.Summary(r.Context(), q); err != nil {
			s.apiError(w, "summary", err)
			return
		}
	}
	type day struct {
		Date string `json:"date"`
		apiCounts
	}
	out := struct {
		apiWindow
		Reports   int64     `json:"reports"`
		Reporters int       `json:"reporters"`
		Totals    apiCounts `json:"totals"`
		Daily     []day     `json:"daily"`
	}{apiWindow: window(q), Reports: sum.Reports, Reporters: sum.Reporters, Totals: withDerived(sum.Totals), Daily: []day{}}
	for _, d := range sum.Days {
		out.Daily = append(out.Daily, day{d.Date.Format(time.DateOnly), withDerived(d.Counts)})
	}
	writeJSON(w, http.StatusOK, out)
}

// apiSources serves GET /api/sources:
//
//	{"domain": "", ..., "failing": false, "sources": [{"ip": "192.0.2.1",
//	  "ptr": "mail.example.com", "domains": ["example.com"], counts}]}
func (s *Server) apiSources(w http.ResponseWriter, r *http.Request) {
	q, src, ok := s.apiQuery(w, r)
	if !ok {
		return
	}
	type source struct {
		IP      string   `json:"ip"`
		PTR     string   `json:"ptr,omitempty"`
		Domains []string `json:"domains"`
		apiCounts
	}
	out := struct {
		apiWindow
		Failing bool     `json:"failing"`
		Sources []source `json:"sources"`
	}{apiWindow: window(q), Failing: q.Failing, Sources: []source{}}
	if src != nil {
		rows, err := src.Sources(r.Context(), q)
		if err != nil {
			s.apiError(w, "sources", err)
			return
		}
		s.lookupNames(r.Context(), rows[:min(len(rows), apiNames)])
		for _, row := range rows {
			if row.Domains == nil {
				row.Domains = []string{}
			}
			out.Sources = append(out.Sources, source{row.IP.String(), row.PTR, row.Domains, withDerived(row.Counts)})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiReporters serves GET /api/reporters:
//
//	{"domain": "", ..., "reporters": [{"org": "google.com", "email":
//	  "noreply-dmarc-support@google.com", "reports": 15, "last_report": ..., counts}]}
func (s *Server) apiReporters(w http.ResponseWriter, r *http.Request) {
	q, src, ok := s.apiQuery(w, r)
	if !ok {
		return
	}
	type reporter struct {
		Org     string    `json:"org"`
		Email   string    `json:"email"`
		Reports int64     `json:"reports"`
		Last    time.Time `json:"last_report"`
		apiCounts
	}
	out := struct {
		apiWindow
		Reporters []reporter `json:"reporters"`
	}{apiWindow: window(q), Reporters: []reporter{}}
	if src != nil {
		rows, err := src.Reporters(r.Context(), q)
		if err != nil {
			s.apiError(w, "reporters", err)
			return
		}
		for _, row := range rows {
			out.Reporters = append(out.Reporters, reporter{row.Org, row.Email, row.Reports, row.Last, withDerived(row.Counts)})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiNames is how many rows of /api/sources get their PTR names looked
// up, at most.
const apiNames = 100

// apiQuery reads the query parameters, answering 400 when they are bad.
func (s *Server) apiQuery(w http.ResponseWriter, r *http.Request) (Query, Source, bool) {
	q, err := s.parseQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return q, nil, false
	}
	return q, s.opts.Source, true
}

// apiError logs a store failure and answers 500.
func (s *Server) apiError(w http.ResponseWriter, what string, err error) {
	s.log.Error("API", "query", what, "error", err)
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the report store could not be read"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
