package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"time"
)

//go:embed templates static
var files embed.FS

var dashboardTemplate = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{
	"num": formatInt,
	"pct": formatPercent,
	"f":   func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02")
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
	"hint": fixHint,
}).ParseFS(files, "templates/dashboard.html"))

// staticHandler serves the embedded stylesheet.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(files, "static")
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// Rows the dashboard shows at most; the API gives more.
const (
	pageSources = 50
	pageFailing = 25
)

// dayChoices are the windows the form offers.
var dayChoices = []int{7, 15, 30, 90}

// page is what the dashboard template shows.
type page struct {
	Version    string
	Domain     string // "" for every domain
	Days       int
	Until      string // the last day, YYYY-MM-DD, when asked for; "" for today
	DayChoices []int
	Domains    []DomainRow
	Summary    Summary
	Chart      chart
	Sources    []SourceRow
	Failing    []SourceRow
	Reporters  []Reporter
	// SourceDomains is whether the Source said which domains the
	// failing sources sent for.
	SourceDomains bool
	NoSource      bool   // no received-report store at all
	Error         string // the Source failed
	Generated     time.Time
}

// Window names the days the page covers: "the last 15 days", or "the 15
// days to 2025-01-03".
func (p *page) Window() string {
	if p.Until == "" {
		return fmt.Sprintf("the last %d days", p.Days)
	}
	return fmt.Sprintf("the %d days to %s", p.Days, p.Until)
}

// Scope names what the page covers.
func (p *page) Scope() string {
	if p.Domain == "" {
		return "all domains"
	}
	return p.Domain
}

// dashboard serves the HTML dashboard: GET /?domain=&days=&until=.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	q, err := s.parseQuery(r.URL.Query())
	if err != nil {
		badRequest(w, err)
		return
	}
	p := &page{Version: s.opts.Version, Domain: q.Domain, Days: q.Days(), Generated: s.now().UTC()}
	if r.URL.Query().Get("until") != "" {
		p.Until = q.To.AddDate(0, 0, -1).Format(time.DateOnly)
	}
	p.DayChoices = dayChoices
	if !slices.Contains(p.DayChoices, p.Days) {
		p.DayChoices = append(slices.Clone(dayChoices), p.Days)
		slices.Sort(p.DayChoices)
	}
	status := http.StatusOK
	if src := s.opts.Source; src == nil {
		p.NoSource = true
		p.Summary = emptySummary(q)
	} else if err := s.fill(r, src, q, p); err != nil {
		s.log.Error("dashboard", "error", err)
		p.Error = "The report store could not be read; the log says why."
		p.Summary = emptySummary(q)
		status = http.StatusInternalServerError
	}
	p.Chart = newChart(p.Summary)
	var b bytes.Buffer
	if err := dashboardTemplate.Execute(&b, p); err != nil {
		s.log.Error("dashboard template", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fill reads what the page shows from src.
func (s *Server) fill(r *http.Request, src Source, q Query, p *page) error {
	ctx := r.Context()
	var err error
	if p.Domains, err = src.Domains(ctx, q); err != nil {
		return fmt.Errorf("domains: %w", err)
	}
	if p.Summary, err = src.Summary(ctx, q); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	sq := q
	sq.Limit = pageSources
	if p.Sources, err = src.Sources(ctx, sq); err != nil {
		return fmt.Errorf("sources: %w", err)
	}
	sq.Failing, sq.Limit = true, pageFailing
	if p.Failing, err = src.Sources(ctx, sq); err != nil {
		return fmt.Errorf("failing sources: %w", err)
	}
	if p.Reporters, err = src.Reporters(ctx, q); err != nil {
		return fmt.Errorf("reporters: %w", err)
	}
	s.lookupNames(ctx, p.Sources, p.Failing)
	for _, f := range p.Failing {
		p.SourceDomains = p.SourceDomains || len(f.Domains) > 0
	}
	return nil
}

// emptySummary is the Summary of a window without reports.
func emptySummary(q Query) Summary {
	s := Summary{Domain: q.Domain, From: q.From, To: q.To}
	for d := q.From; d.Before(q.To); d = d.AddDate(0, 0, 1) {
		s.Days = append(s.Days, Day{Date: d})
	}
	return s
}

// fixHint says what to do about a source whose mail fails DMARC.
func fixHint(s SourceRow) string {
	switch {
	case s.SPFPass == 0 && s.DKIMPass == 0:
		return "Neither SPF nor DKIM aligned. If this host sends your mail, add it to your SPF record or have it sign with DKIM for your domain; if not, it is forging your domain."
	case s.DKIMPass == 0:
		return "SPF aligns only sometimes and DKIM never: sign this host's mail with DKIM for your domain (SPF breaks on forwarding)."
	case s.SPFPass == 0:
		return "DKIM fails on some messages and SPF never aligns: check the DKIM keys of this host, or messages changed in transit (mailing lists)."
	}
	return "Some messages fail both SPF and DKIM: mail forwarded or changed in transit, or a second platform sending from this host."
}
