package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Query parameters shared by the dashboard and the API.
const (
	// DefaultDays is the window shown when none is asked for: Xeams'
	// summary, the model of the dashboard, shows 15 days.
	DefaultDays = 15
	// MaxDays is the longest window.
	MaxDays = 366
	// DefaultLimit and MaxLimit bound the source rows of the API.
	DefaultLimit = 100
	MaxLimit     = 10000
)

// parseQuery reads domain, days, until, failing and limit from the URL:
// the window is days days ending with until (YYYY-MM-DD, UTC) included,
// today by default.
func (s *Server) parseQuery(v url.Values) (Query, error) {
	var q Query
	domain, err := parseDomain(v.Get("domain"))
	if err != nil {
		return q, err
	}
	q.Domain = domain
	days := DefaultDays
	if d := v.Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > MaxDays {
			return q, fmt.Errorf("days: %q is not a number from 1 to %d", d, MaxDays)
		}
		days = n
	}
	now := s.now().UTC()
	q.To = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	if u := v.Get("until"); u != "" {
		day, err := time.Parse(time.DateOnly, u)
		if err != nil {
			return q, fmt.Errorf("until: %q is not a day such as 2026-01-31", u)
		}
		q.To = day.AddDate(0, 0, 1)
	}
	q.From = q.To.AddDate(0, 0, -days)
	switch f := v.Get("failing"); f {
	case "", "0", "false":
	case "1", "true":
		q.Failing = true
	default:
		return q, fmt.Errorf("failing: %q is not true or false", f)
	}
	q.Limit = DefaultLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fmt.Errorf("limit: %q is not a number from 1 to %d", l, MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// parseDomain checks a policy domain from a URL and puts it in the form
// reports carry: lower case, no trailing dot. "" stands for every domain.
func parseDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" {
		return "", nil
	}
	if len(d) > 253 || strings.Contains(d, "..") || strings.HasPrefix(d, ".") {
		return "", errors.New("domain: not a domain name")
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", errors.New("domain: not a domain name (letters, digits, '-', '_' and '.': A-labels)")
		}
	}
	return d, nil
}

// ptrTimeout bounds the name lookups of one page.
const ptrTimeout = 3 * time.Second

// lookupNames fills in the PTR names the Source left empty, a few
// lookups at a time, within ptrTimeout; names not found in time stay "".
func (s *Server) lookupNames(ctx context.Context, rows ...[]SourceRow) {
	if s.opts.Resolver == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ptrTimeout)
	defer cancel()
	names := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, rs := range rows {
		for i := range rs {
			ip := rs[i].IP.String()
			if rs[i].PTR != "" || !rs[i].IP.IsValid() {
				continue
			}
			mu.Lock()
			_, seen := names[ip]
			names[ip] = ""
			mu.Unlock()
			if seen {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-sem }()
				if ns, err := s.opts.Resolver.LookupAddr(ctx, ip); err == nil && len(ns) > 0 {
					mu.Lock()
					names[ip] = strings.TrimSuffix(ns[0], ".")
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, rs := range rows {
		for i := range rs {
			if rs[i].PTR == "" {
				rs[i].PTR = names[rs[i].IP.String()]
			}
		}
	}
}

// badRequest answers 400 with err's text.
func badRequest(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusBadRequest)
}
