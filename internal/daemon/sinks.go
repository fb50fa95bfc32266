package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/history"
	"github.com/dmarcd/dmarcd/report"
)

// openHistory opens OpenDMARC's history file when one is configured, as
// a sink beside the report store's Writer (nil when none is). The
// returned function writes what is queued and closes the file.
func openHistory(cfg *config.Config, log *slog.Logger) (report.Sink, func(), error) {
	if cfg.HistoryFile == "" {
		return nil, func() {}, nil
	}
	w, err := history.Open(cfg.HistoryFile)
	if err != nil {
		return nil, nil, fmt.Errorf("history_file: %w", err)
	}
	reporter := cfg.AuthservID
	if reporter == "" || reporter == "HOSTNAME" {
		reporter, _ = os.Hostname()
	}
	h := newHistorySink(w, reporter, cfg.RecordAllMessages, log)
	return h, h.close, nil
}

// fanout hands every row to several sinks.
type fanout []report.Sink

func (f fanout) Add(r report.Row) {
	for _, s := range f {
		s.Add(r)
	}
}

// historySink writes history records off the SMTP reply path: a write
// blocks while opendmarc-import holds the file's lock, so records wait in
// a bounded queue. A full queue drops the record, counts it and says so.
type historySink struct {
	w         *history.Writer
	reporter  string
	recordAll bool
	log       *slog.Logger
	queue     chan history.Record
	done      chan struct{}
	dropped   atomic.Int64
	once      sync.Once
}

const historyQueue = 10000

func newHistorySink(w *history.Writer, reporter string, recordAll bool, log *slog.Logger) *historySink {
	h := &historySink{w: w, reporter: reporter, recordAll: recordAll, log: log,
		queue: make(chan history.Record, historyQueue), done: make(chan struct{})}
	go h.run()
	return h
}

// Add implements report.Sink: one record per message, as OpenDMARC writes,
// for the row of the domain the verdict is about.
func (h *historySink) Add(r report.Row) {
	if !r.Primary || !history.Wanted(r, h.recordAll) {
		return
	}
	select {
	case h.queue <- history.FromRow(r, r.QueueID, h.reporter):
	default:
		if n := h.dropped.Add(1); n == 1 || n%1000 == 0 {
			h.log.Error("history file queue full; records dropped", "dropped", n)
		}
	}
}

func (h *historySink) run() {
	defer close(h.done)
	for rec := range h.queue {
		if err := h.w.Write(rec); err != nil {
			h.log.Error("history file", "error", err)
		}
	}
}

// close writes what is queued and closes the file.
func (h *historySink) close() {
	h.once.Do(func() {
		close(h.queue)
		<-h.done
		h.w.Close()
	})
}
