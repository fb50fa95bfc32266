package scheduler

import (
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/store"
)

func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		name               string
		ri, floor, ceiling time.Duration
		want               time.Duration
	}{
		{"no ri is a day", 0, Hourly, Daily, Daily},
		{"an hourly ri is honoured", time.Hour, Hourly, Daily, time.Hour},
		{"an ri between two lengths rounds down, so reports come at least as often", 90 * time.Minute, Hourly, Daily, time.Hour},
		{"two hours is a length of its own", 2 * time.Hour, Hourly, Daily, 2 * time.Hour},
		{"2h46m rounds down to two hours", 10000 * time.Second, Hourly, Daily, 2 * time.Hour},
		{"six hours divides the day", 6 * time.Hour, Hourly, Daily, 6 * time.Hour},
		{"a day is a day", 86400 * time.Second, Hourly, Daily, Daily},
		{"a week is lowered to the daily ceiling", 604800 * time.Second, Hourly, Daily, Daily},
		{"a week is a week under a weekly ceiling", 604800 * time.Second, Hourly, Weekly, Weekly},
		{"three days round down to a day under a weekly ceiling", 3 * Daily, Hourly, Weekly, Daily},
		{"an hourly ri is raised to a daily floor", time.Hour, Daily, Daily, Daily},
		{"under an hour is an hour", time.Minute, Hourly, Daily, time.Hour},
		{"a weekly floor makes every period a week", time.Hour, Weekly, Weekly, Weekly},
		{"no ceiling means weekly", 30 * Daily, Hourly, 0, Weekly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Interval(tc.ri, tc.floor, tc.ceiling); got != tc.want {
				t.Errorf("Interval(%v, %v, %v) = %v, want %v", tc.ri, tc.floor, tc.ceiling, got, tc.want)
			}
		})
	}
}

func TestPeriodsAreAlignedOnUTCBoundaries(t *testing.T) {
	at := time.Date(2026, 3, 4, 13, 20, 5, 0, time.FixedZone("CET", 3600)) // 12:20:05 UTC
	for _, tc := range []struct {
		name       string
		iv         time.Duration
		begin, end time.Time
	}{
		{"an hour begins on the hour", time.Hour, time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 13, 0, 0, 0, time.UTC)},
		{"six hours begin at 00, 06, 12 or 18 UTC", 6 * time.Hour, time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 18, 0, 0, 0, time.UTC)},
		{"eight hours begin at 00, 08 or 16 UTC", 8 * time.Hour, time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 16, 0, 0, 0, time.UTC)},
		{"a day begins at midnight UTC, whatever the time zone of the clock", Daily, time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
		{"a week begins on Monday at midnight UTC", Weekly, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PeriodOf(at, tc.iv)
			if !p.Begin.Equal(tc.begin) || !p.End.Equal(tc.end) {
				t.Errorf("PeriodOf(%v, %v) = %v, want %v/%v", at, tc.iv, p, tc.begin, tc.end)
			}
			if p.Begin.Location() != time.UTC {
				t.Errorf("period in %v, want UTC", p.Begin.Location())
			}
			if err := p.Check(); err != nil {
				t.Errorf("the store refuses the period: %v", err)
			}
		})
	}
	if PeriodOf(monday, Weekly).Begin.Weekday() != time.Monday {
		t.Errorf("a week does not begin on Monday")
	}
}

func TestEveryIntervalDividesTheNextLongerOne(t *testing.T) {
	for _, iv := range intervals {
		if iv < Daily && Daily%iv != 0 {
			t.Errorf("%v does not divide a day", iv)
		}
		if Weekly%iv != 0 {
			t.Errorf("%v does not divide a week", iv)
		}
	}
}

func TestSpreadOffsetsStayInTheirWindowAndDiffer(t *testing.T) {
	p := store.Period{Begin: monday, End: monday.Add(Daily)}
	seen := map[time.Duration]bool{}
	for i := range 200 {
		d := "d" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".test"
		o := spreadOffset(d, p, 2*time.Hour)
		if o < 0 || o >= 2*time.Hour {
			t.Fatalf("offset %v of %s outside [0, 2h)", o, d)
		}
		if o != spreadOffset(d, p, 2*time.Hour) {
			t.Fatalf("offset of %s not stable", d)
		}
		seen[o.Truncate(10*time.Minute)] = true
	}
	if len(seen) < 10 {
		t.Errorf("200 domains fall in %d of the 12 ten-minute slots of 2h", len(seen))
	}
	if o := spreadOffset("x.test", p, 0); o != 0 {
		t.Errorf("no window gives offset %v", o)
	}
}

func TestBackoffDoublesUpToItsMaximum(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, 5 * time.Minute}, {2, 10 * time.Minute}, {3, 20 * time.Minute}, {6, 160 * time.Minute}, {7, 4 * time.Hour}, {50, 4 * time.Hour}} {
		if got := backoff(tc.attempt, 5*time.Minute, 4*time.Hour); got != tc.want {
			t.Errorf("backoff after attempt %d = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}
