package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/report/store"
)

// Rate is a rate limit: at most N deliveries in any window of length Per.
// The zero Rate sets no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// Unlimited reports whether r sets no limit.
func (r Rate) Unlimited() bool { return r.N <= 0 || r.Per <= 0 }

// String returns "N/Per", or "unlimited".
func (r Rate) String() string {
	if r.Unlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%d/%v", r.N, r.Per)
}

// limiter applies the global and per-destination rate limits to one run.
// It counts what the store says was attempted within each window (by this
// node or by the one that held the lease before) plus what this run
// takes, so that the limits hold across runs, restarts and nodes. Windows
// slide: the count is of the attempts of the last Per before the run.
//
// Per destination means per destination domain (the host part of the rua
// address): what a big mailbox provider sees, and blocks, is mail to its
// domain, whichever mailbox it is for.
type limiter struct {
	global, perDest Rate

	mu         sync.Mutex
	globalUsed int
	destUsed   map[string]int
}

// newLimiter seeds a limiter with the store's attempts in each window
// before now.
func newLimiter(ctx context.Context, st store.Store, now time.Time, global, perDest Rate) (*limiter, error) {
	l := &limiter{global: global, perDest: perDest, destUsed: map[string]int{}}
	if !global.Unlimited() {
		cs, err := st.Attempted(ctx, now.Add(-global.Per))
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			l.globalUsed += c.Count
		}
	}
	if !perDest.Unlimited() {
		cs, err := st.Attempted(ctx, now.Add(-perDest.Per))
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			l.destUsed[strings.ToLower(c.Domain)] += c.Count
		}
	}
	return l, nil
}

// take reserves one delivery to the destination domain, and reports false
// when a limit forbids it.
func (l *limiter) take(domain string) bool {
	domain = strings.ToLower(domain)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.global.Unlimited() && l.globalUsed >= l.global.N {
		return false
	}
	if !l.perDest.Unlimited() && l.destUsed[domain] >= l.perDest.N {
		return false
	}
	l.globalUsed++
	l.destUsed[domain]++
	return true
}

// backoff returns how long to wait after the attempt-th failed attempt
// (1 for the first): first, doubled at each attempt, at most most.
func backoff(attempt int, first, most time.Duration) time.Duration {
	d := first
	for i := 1; i < attempt && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
