package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dmarcd/dmarcd/report/delivery"
)

func TestStatsAddUpTheRounds(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	e.sender.fail = func(rcpt string, n int) error {
		if n == 1 {
			return &delivery.Error{Stage: "rcpt", Code: 451, Temporary: true, Err: errors.New("try later")}
		}
		return nil
	}
	e.ingest("example.com", day(0).Add(time.Hour), ip(1), 3)
	e.ingest("example.org", day(0).Add(time.Hour), ip(2), 1)
	e.clock.Set(day(1).Add(10 * time.Minute))
	e.runOnce() // two reports created, both deferred
	e.clock.Add(time.Hour)
	e.runOnce() // both sent
	if _, err := e.s.RunOnce(context.Background(), RunOptions{DryRun: t.TempDir()}); err != nil {
		t.Fatal(err)
	}

	got := e.s.Stats()
	want := Stats{Runs: 2, Created: 2, Sent: 2, Deferred: 2}
	if got != want {
		t.Errorf("Stats() = %+v, want %+v (dry runs not counted)", got, want)
	}
}

func TestStatsSayWhetherThisSchedulerHoldsTheLease(t *testing.T) {
	e := newEnv(t, testConfig(), Deps{})
	s, err := New(testConfig(), Deps{Store: e.db, Sender: e.sender, Now: e.clock.Now, Logger: e.s.log, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Stats().Sender {
		t.Error("a scheduler that never ran says it holds the lease")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !s.Stats().Sender {
		if time.Now().After(deadline) {
			t.Fatal("Run did not take the lease in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if s.Stats().Sender {
		t.Error("a stopped scheduler says it holds the lease")
	}
}
