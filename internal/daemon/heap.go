package daemon

import (
	"log/slog"
	"os"

	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/heapgoal"
)

// startHeapGoal starts the garbage collector tuning of heap_target, unless
// it is 0 or GOGC is set in the environment: an administrator who set
// GOGC chose the collector's pace already.
func startHeapGoal(cfg *config.Config, log *slog.Logger) *heapgoal.Tuner {
	if cfg.HeapTarget == 0 {
		return nil
	}
	if v, ok := os.LookupEnv("GOGC"); ok {
		log.Info("GOGC is set in the environment; heap_target is not used", "GOGC", v)
		return nil
	}
	return heapgoal.Start(uint64(cfg.HeapTarget))
}
