// Package heapgoal lets the Go heap grow to a fixed size before it is
// collected, as long as the data it holds is small.
//
// Go collects when the heap has grown by GOGC percent (100) of the live
// data. dmarcd's live data is small unless its DNS cache is full (8 MiB
// under a load of 10,000 sender domains), while a message allocates some
// 20 KiB, mostly in the milter library: the collector then ran ten times a
// second, and the messages that overlapped a collection were the slowest
// hundredth. With a target of, say, 48 MiB, GOGC is set after every
// collection so that the next one starts when the heap reaches the target,
// and never below Go's default of 100: when the live data is over half
// the target (a full cache), the heap grows to twice the live data, as
// without this package, and memory use is the same.
//
// bytedance/gopkg's gctuner does the same, but reads runtime.MemStats,
// which stops the world, after each collection, and lowers GOGC below
// the default past its threshold; this package reads runtime/metrics.
package heapgoal

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Bounds of the GOGC values set: never below Go's default, and not so
// high that a tiny live heap (an idle daemon) lets garbage pile up
// without end before the target is reached.
const (
	minPercent = 100
	maxPercent = 1000
)

// The runtime metrics the collector's goal is computed from: the goal is
// live + (live + stacks + globals) × GOGC / 100.
var names = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Tuner sets GOGC after every collection. Only one should run at a time.
type Tuner struct {
	target  uint64
	percent atomic.Int64 // read by Percent without the lock

	// mu serializes tune and Stop, so that a tune in progress cannot set
	// GOGC again after Stop restored it.
	mu      sync.Mutex
	stopped bool
	samples []metrics.Sample
}

// Start sets GOGC now and after every collection so that the heap may
// grow to target bytes before the next one, until Stop.
func Start(target uint64) *Tuner {
	t := &Tuner{target: target, samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		t.samples[i].Name = n
	}
	t.tune()
	t.arm()
	return t
}

// Percent returns the GOGC value set last.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// Stop ends the tuning and restores Go's default GOGC.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(minPercent)
	t.percent.Store(minPercent)
}

// arm registers a finalizer on a new object that no one references: it
// runs after the next collection, tunes, and arms again.
func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if t.tune() {
			t.arm()
		}
	})
}

// sentinel is the object whose finalizer marks the end of a collection.
// It holds a pointer so that it is not one of the tiny objects the
// runtime packs together, whose finalizers may never run.
type sentinel struct{ _ *int }

// tune sets GOGC for the live heap of the last collection. It reports
// false, doing nothing, once Stop was called.
func (t *Tuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.samples)
	var v [3]uint64
	for i, s := range t.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := Percent(v[0], v[1]+v[2], t.target)
	if int64(p) != t.percent.Load() {
		debug.SetGCPercent(p)
		t.percent.Store(int64(p))
	}
	return true
}

// Percent returns the GOGC value that makes the collector's goal target
// bytes for a heap of live bytes, with roots bytes of stacks and globals
// to scan, within [100, 1000].
func Percent(live, roots, target uint64) int {
	base := live + roots
	if base == 0 || target <= live {
		return minPercent
	}
	p := (target - live) * 100 / base
	return int(min(max(p, minPercent), maxPercent))
}
