package daemon

import (
	"io"
	"log/slog"
	"testing"

	"github.com/dmarcd/dmarcd/internal/config"
)

func TestStartHeapGoal(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name   string
		target config.Size
		gogc   string // "" leaves GOGC unset
		starts bool
	}{
		{"the default target starts the tuner", config.Default().HeapTarget, "", true},
		{"a target of 0B leaves Go's default", 0, "", false},
		{"GOGC in the environment wins over the target", 60 * config.MiB, "200", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gogc != "" {
				t.Setenv("GOGC", tc.gogc)
			}
			cfg := config.Default()
			cfg.HeapTarget = tc.target
			tu := startHeapGoal(cfg, quiet)
			if (tu != nil) != tc.starts {
				t.Fatalf("tuner started: %v, want %v", tu != nil, tc.starts)
			}
			if tu != nil {
				if p := tu.Percent(); p < 100 || p > 1000 {
					t.Errorf("GOGC set to %d, want 100 to 1000", p)
				}
				tu.Stop()
			}
		})
	}
}
