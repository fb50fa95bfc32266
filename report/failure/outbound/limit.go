package outbound

import (
	"context"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/report/scheduler"
	"github.com/dmarcd/dmarcd/report/store"
)

// limiter applies the per policy domain and per destination domain rate
// limits to one run. It counts what the store says was sent within each
// window, by this node or another, plus what this run sends, so that the
// limits hold across runs, restarts and nodes.
type limiter struct {
	perDomain, perDest scheduler.Rate
	domainUsed         map[string]int
	destUsed           map[string]int
}

func newLimiter(ctx context.Context, st Store, now time.Time, perDomain, perDest scheduler.Rate) (*limiter, error) {
	l := &limiter{perDomain: perDomain, perDest: perDest, domainUsed: map[string]int{}, destUsed: map[string]int{}}
	var sent []store.FailureCount // per policy and destination domain, in perDomain's window
	if !perDomain.Unlimited() {
		var err error
		if sent, err = st.FailuresSent(ctx, now.Add(-perDomain.Per)); err != nil {
			return nil, err
		}
		for _, c := range sent {
			l.domainUsed[c.PolicyDomain] += c.Count
		}
	}
	if !perDest.Unlimited() {
		// The counts of perDomain's window serve when it is the same.
		if perDomain.Unlimited() || perDest.Per != perDomain.Per {
			var err error
			if sent, err = st.FailuresSent(ctx, now.Add(-perDest.Per)); err != nil {
				return nil, err
			}
		}
		for _, c := range sent {
			l.destUsed[c.DestDomain] += c.Count
		}
	}
	return l, nil
}

// take reserves one report about domain to dest, and reports false when a
// limit forbids it.
func (l *limiter) take(domain, dest string) bool {
	domain, dest = strings.ToLower(domain), strings.ToLower(dest)
	if !l.perDomain.Unlimited() && l.domainUsed[domain] >= l.perDomain.N {
		return false
	}
	if !l.perDest.Unlimited() && l.destUsed[dest] >= l.perDest.N {
		return false
	}
	l.domainUsed[domain]++
	l.destUsed[dest]++
	return true
}

// giveBack returns a reservation for a report that was not sent.
func (l *limiter) giveBack(domain, dest string) {
	domain, dest = strings.ToLower(domain), strings.ToLower(dest)
	l.domainUsed[domain]--
	l.destUsed[dest]--
}
