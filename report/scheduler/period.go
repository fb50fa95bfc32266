package scheduler

import (
	"time"

	"github.com/dmarcd/dmarcd/report/store"
)

// The cadences an operator bounds report periods with.
const (
	Hourly = time.Hour
	Daily  = 24 * time.Hour
	Weekly = 7 * Daily
)

// intervals are the report period lengths a domain can get, shortest
// first: the whole-hour divisors of a day, a day and a week. Each divides
// the next larger UTC day or week, so that periods of any of them begin
// and end on UTC boundaries (RFC 7489 §7.2: "reporting periods ... begin
// at midnight UTC") and a period of one length never straddles a boundary
// of a longer one.
var intervals = []time.Duration{
	time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 8 * time.Hour, 12 * time.Hour,
	Daily, Weekly,
}

// DefaultRI is the ri of a record that says nothing, and the interval of
// every RFC 9989 domain: RFC 9989 removed ri and RFC 9990 expects reports
// to cover whole UTC days.
const DefaultRI = Daily

// Interval returns the length of a domain's report periods: the longest of
// intervals not longer than ri (so that reports come at least as often as
// the domain asked, RFC 7489 §6.3: "separated by no more than the requested
// number of seconds"), then raised to floor and lowered to ceiling. An ri
// of zero or less means DefaultRI. floor and ceiling must be Hourly, Daily
// or Weekly (ceiling zero means Weekly), floor not above ceiling.
func Interval(ri, floor, ceiling time.Duration) time.Duration {
	if ri <= 0 {
		ri = DefaultRI
	}
	iv := intervals[0]
	for _, d := range intervals {
		if d <= ri {
			iv = d
		}
	}
	if ceiling <= 0 {
		ceiling = Weekly
	}
	return min(max(iv, floor), ceiling)
}

// PeriodOf returns the period of length iv (one of the lengths Interval
// returns) that holds t. Days begin at midnight UTC and weeks on Monday at
// midnight UTC: time.Truncate counts from the zero time, Monday 1 January
// of year 1, 00:00 UTC.
func PeriodOf(t time.Time, iv time.Duration) store.Period {
	b := t.UTC().Truncate(iv)
	return store.Period{Begin: b, End: b.Add(iv)}
}

// spreadOffset returns where within [0, window) the report of domain for p
// is sent: a hash of the two, the same on every node, so that the reports
// of many domains leave over the window rather than together at its start.
func spreadOffset(domain string, p store.Period, window time.Duration) time.Duration {
	if window < time.Second {
		return 0
	}
	h := uint64(14695981039346656037) // FNV-1a
	for _, s := range []string{domain, p.String()} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h *= 1099511628211 // a separator between the two
	}
	return time.Duration(h%uint64(window/time.Second)) * time.Second
}
