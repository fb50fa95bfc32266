//go:build !unix

package store

import "sync"

var (
	locksMu sync.Mutex
	locks   = map[string]bool{}
)

// lockFile takes a lock on the name p within the process: without flock,
// leases on SQLite do not reach other processes.
func lockFile(p string) (unlock func() error, err error) {
	locksMu.Lock()
	defer locksMu.Unlock()
	if locks[p] {
		return nil, ErrLeaseHeld
	}
	locks[p] = true
	return func() error {
		locksMu.Lock()
		defer locksMu.Unlock()
		delete(locks, p)
		return nil
	}, nil
}
