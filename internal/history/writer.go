package history

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrClosed is returned by Write and Reopen after Close.
var ErrClosed = errors.New("history file closed")

// FileMode is the permission a new history file is created with (before
// the umask).
const FileMode = 0o640

// maxReopens bounds how often one Write follows a path that keeps being
// renamed under it before it writes to the file it has.
const maxReopens = 3

// Writer appends records to a history file. It is safe for concurrent use,
// and safe next to other writers of the same file (other Writers, other
// dmarcd processes, OpenDMARC itself): each record goes out in a single
// write(2) on an O_APPEND descriptor, under the exclusive flock(2) OpenDMARC
// takes, so records never interleave and opendmarc-import, which reads
// under a shared flock, never sees half of one.
//
// Durability is OpenDMARC's: a record is in the kernel when Write returns,
// so it survives a crash of dmarcd but not of the machine (OpenDMARC does
// fopen, fwrite, fclose, and no fsync either). Nothing is buffered in the
// process, so a stop loses nothing that Write accepted.
//
// Rotation needs no signal. OpenDMARC opens the file anew for every
// message, and the pipelines around it count on that: they rename the file
// and import the renamed one, or truncate it. Write keeps its descriptor
// but, holding the lock, checks that the path still names the file it has;
// when the file was renamed or removed it opens the path again (creating
// it), so a record lands either in the old file before the importer reads
// it or in the new one. Truncation needs nothing: O_APPEND writes at the
// new end. Reopen remains for SIGHUP-driven setups.
//
// Write blocks while opendmarc-import holds its shared lock, which it does
// for a whole import, as OpenDMARC's writes did: call it off the milter's
// reply path.
type Writer struct {
	path string
	host string // default Reporter

	mu     sync.Mutex
	f      *os.File
	closed bool
}

// Open opens (creating with FileMode) the history file at path for
// appending. It fails now, at startup, if the file cannot be opened, where
// OpenDMARC would tempfail every message.
func Open(path string) (*Writer, error) {
	w := &Writer{path: path}
	if h, err := os.Hostname(); err == nil {
		w.host = h
	} else {
		w.host = "localhost"
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	w.f = f
	return w, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open history file: %w", err)
	}
	return f, nil
}

// Path returns the file's path.
func (w *Writer) Path() string { return w.path }

// Write appends one record. An empty Reporter becomes the host name and a
// zero Received the current time. The record is written whole or not at
// all as far as other readers and writers are concerned; an error leaves
// the Writer usable.
func (w *Writer) Write(r Record) error {
	if r.Reporter == "" {
		r.Reporter = w.host
	}
	if r.Received.IsZero() {
		r.Received = time.Now()
	}
	return w.writeBytes(Format(r))
}

// writeBytes appends b under the lock, following a renamed path.
func (w *Writer) writeBytes(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	for reopens := 0; ; reopens++ {
		if w.f == nil {
			f, err := openAppend(w.path)
			if err != nil {
				return err
			}
			w.f = f
		}
		// As OpenDMARC, write even when the lock cannot be had (a file
		// system without flock): O_APPEND and one write keep the record
		// whole against other appenders.
		locked := lockFile(w.f) == nil
		if reopens < maxReopens && !w.current() {
			if locked {
				_ = unlockFile(w.f)
			}
			_ = w.f.Close()
			w.f = nil
			continue
		}
		_, err := w.f.Write(b)
		if locked {
			_ = unlockFile(w.f)
		}
		if err != nil {
			return fmt.Errorf("write history file %s: %w", w.path, err)
		}
		return nil
	}
}

// current reports whether the path still names the open file.
func (w *Writer) current() bool {
	st, err := os.Stat(w.path)
	if err != nil {
		return false
	}
	ft, err := w.f.Stat()
	if err != nil {
		return false
	}
	return os.SameFile(st, ft)
}

// Reopen closes the file and opens the path again, for a rotation that
// signals (SIGHUP) rather than relying on Write noticing the rename.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	f, err := openAppend(w.path)
	if err != nil {
		return err
	}
	if w.f != nil {
		_ = w.f.Close()
	}
	w.f = f
	return nil
}

// Close closes the file; later writes fail with ErrClosed. Closing twice
// is harmless.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close history file: %w", err)
	}
	return nil
}
