//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package history

import "os"

// lockFile does nothing where flock(2) is not available: O_APPEND and a
// single write still keep records whole.
func lockFile(f *os.File) error { return nil }

// unlockFile does nothing.
func unlockFile(f *os.File) error { return nil }
