package heapgoal

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

const MiB = 1 << 20

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name              string
		live, roots, goal uint64
		want              int
	}{
		{"a small live heap may grow to the target", 8 * MiB, 0, 60 * MiB, 650},
		{"stacks and globals count as the collector counts them", 8 * MiB, 2 * MiB, 60 * MiB, 520},
		{"a tiny live heap is held to ten times its size", 1 * MiB, 0, 60 * MiB, 1000},
		{"a live heap over half the target gets Go's default", 31 * MiB, 0, 60 * MiB, 100},
		{"a live heap over the target gets Go's default", 90 * MiB, 0, 60 * MiB, 100},
		{"an empty heap gets Go's default", 0, 0, 60 * MiB, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.live, tc.roots, tc.goal); got != tc.want {
				t.Errorf("Percent(%d MiB, %d MiB, %d MiB) = %d, want %d", tc.live/MiB, tc.roots/MiB, tc.goal/MiB, got, tc.want)
			}
		})
	}
}

// gogc returns the runtime's GOGC setting.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collectUntil runs collections until GOGC is want (the tuner runs in a
// finalizer, after the collection), and fails after 100 tries.
func collectUntil(t *testing.T, want int) {
	t.Helper()
	for range 100 {
		runtime.GC()
		if gogc() == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("GOGC is %d after 100 collections, want %d", gogc(), want)
}

var keep [][]*int

func TestTunerFollowsTheLiveHeap(t *testing.T) {
	tu := Start(64 * MiB)
	defer tu.Stop()
	collectUntil(t, maxPercent) // this test's live heap is tiny

	// 48 MiB of live data with pointers: over half the target.
	for range 48 {
		keep = append(keep, make([]*int, MiB/8))
	}
	collectUntil(t, minPercent)
	if tu.Percent() != minPercent {
		t.Errorf("Percent() = %d, want %d", tu.Percent(), minPercent)
	}

	keep = nil
	collectUntil(t, maxPercent)

	tu.Stop()
	if got := gogc(); got != minPercent {
		t.Fatalf("GOGC is %d after Stop, want %d", got, minPercent)
	}
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if got := gogc(); got != minPercent {
		t.Errorf("GOGC is %d after collections after Stop, want %d", got, minPercent)
	}
}
