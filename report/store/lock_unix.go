//go:build unix

package store

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// lockFile takes an exclusive flock of the file at p, creating it, and
// returns how to release it. Locks belong to the open file: a second
// lockFile of the same file fails even within the process.
func lockFile(p string) (unlock func() error, err error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLeaseHeld
		}
		return nil, err
	}
	// held keeps f reachable until unlock: a lock whose Lease the caller
	// dropped must not be released by the garbage collector closing f.
	held.Store(f, struct{}{})
	return func() error {
		held.Delete(f)
		return f.Close() // closing the file drops the lock
	}, nil
}

// held holds the files of the locks taken and not yet released.
var held sync.Map
