package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dmarcd/dmarcd/report/aggregate"
	"github.com/dmarcd/dmarcd/report/delivery"
	"github.com/dmarcd/dmarcd/report/store"
)

// dueBatch is how many due deliveries one run looks at.
const dueBatch = 5000

// send attempts the deliveries that are due, within the rate limits.
// Deliveries to one destination go one after the other, oldest first, so
// that a destination receives a domain's reports in order; different
// destinations are served concurrently, Concurrency at a time.
func (r *run) send(ctx context.Context) error {
	at := r.now
	if r.opts.Now {
		at = r.now.Add(100 * 365 * Daily)
	}
	due, err := r.s.st.Due(ctx, at, dueBatch)
	if err != nil {
		return err
	}
	if len(due) == 0 {
		return nil
	}
	if r.opts.DryRun != "" {
		var errs []error
		for _, d := range due {
			errs = append(errs, r.dryDelivery(ctx, d))
		}
		return errors.Join(errs...)
	}
	lim, err := newLimiter(ctx, r.s.st, r.now, r.cfg.Global, r.cfg.PerDestination)
	if err != nil {
		return err
	}
	dir, err := r.cfg.spoolDir()
	if err != nil {
		return err
	}
	files := newFileCache(r.cfg, dir)
	defer files.cleanup()

	// Queues per destination, in Due's order (most overdue first).
	var order []string
	queues := map[string][]store.Delivery{}
	for _, d := range due {
		a := d.Destination.Address
		if _, ok := queues[a]; !ok {
			order = append(order, a)
		}
		queues[a] = append(queues[a], d)
	}
	work := make(chan []store.Delivery)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, len(order)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range work {
				for _, d := range q {
					if ctx.Err() != nil {
						return
					}
					if !lim.take(domainOf(d.Destination.Address)) {
						r.count(func(s *Summary) { s.Limited++ })
						continue
					}
					r.deliver(ctx, d, files, dir)
				}
			}
		}()
	}
	for _, a := range order {
		work <- queues[a]
	}
	close(work)
	wg.Wait()
	if n := r.sum.Limited; n > 0 {
		r.s.log.Info("aggregate report deliveries held back by the rate limits", "deliveries", n,
			"global", r.cfg.Global.String(), "per_destination", r.cfg.PerDestination.String())
	}
	return ctx.Err()
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// relayStages are the steps of an SMTP session that concern the relay and
// our side of it, not the destination.
var relayStages = map[string]bool{"connect": true, "hello": true, "starttls": true, "auth": true, "mail": true}

// deliver makes one attempt at d and records its outcome.
func (r *run) deliver(ctx context.Context, d store.Delivery, files *fileCache, dir string) {
	log := r.s.log.With("domain", d.Domain, "report_id", d.ReportID, "destination", d.Destination.Address)
	rep, err := r.s.st.Report(ctx, d.ReportID)
	if err != nil {
		log.Error("aggregate report delivery: report not found", "err", err)
		return
	}
	src := r.s.reportSource(rep)
	f := r.cfg.formatFor(d.Destination.Address)
	b, err := files.get(ctx, src, f)
	if err != nil {
		if errors.Is(err, aggregate.ErrNoRecords) || errors.Is(err, aggregate.ErrInvalid) {
			r.record(ctx, log, d, store.PermFailed, err.Error(), time.Time{})
		} else {
			r.record(ctx, log, d, store.TempFailed, err.Error(), r.retryAt(d))
		}
		return
	}
	limit := r.cfg.MaxSize
	if m := uint64(d.Destination.MaxSize); m > 0 && m < limit {
		limit = m
	}
	if !aggregate.Fits(b.size, limit) {
		r.tooLarge(ctx, log, d, src, b, f, limit)
		return
	}
	msg, sig, err := r.cfg.compose(dir, src, b, f, d.Destination.Address)
	if err != nil {
		r.record(ctx, log, d, store.TempFailed, err.Error(), r.retryAt(d))
		return
	}
	defer os.Remove(msg.Name())
	defer msg.Close()
	res, err := r.s.sender.Send(ctx, r.cfg.FromAddress, []string{d.Destination.Address}, io.MultiReader(strings.NewReader(sig), msg))
	if err == nil && len(res.Accepted) > 0 {
		r.record(ctx, log, d, store.Delivered, "", time.Time{})
		return
	}
	if err == nil {
		err = res.Rejected[d.Destination.Address]
	}
	if err == nil {
		err = errors.New("the relay accepted no recipient")
	}
	var e *delivery.Error
	switch {
	case ctx.Err() != nil:
		r.record(context.WithoutCancel(ctx), log, d, store.TempFailed, err.Error(), r.retryAt(d))
	case errors.As(err, &e) && relayStages[e.Stage]:
		// Our relay, or our configuration: never the destination's fault.
		log.Error("the relay did not take an aggregate report; will retry", "err", err)
		r.record(ctx, log, d, store.TempFailed, err.Error(), r.retryAt(d))
	case delivery.IsTemporary(err):
		if age := r.now.Sub(d.Created); age > r.cfg.RetryMaxAge {
			r.record(ctx, log, d, store.PermFailed, fmt.Sprintf("gave up after %v: %v", age.Round(time.Minute), err), time.Time{})
			return
		}
		r.record(ctx, log, d, store.TempFailed, err.Error(), r.retryAt(d))
	default:
		r.record(ctx, log, d, store.PermFailed, err.Error(), time.Time{})
	}
}

// retryAt is when to try d again after a temporary failure.
func (r *run) retryAt(d store.Delivery) time.Time {
	return r.now.Add(backoff(d.Attempts+1, r.cfg.RetryBackoff, r.cfg.RetryBackoffMax))
}

// record writes the outcome of an attempt at d.
func (r *run) record(ctx context.Context, log *slog.Logger, d store.Delivery, o store.Outcome, msg string, next time.Time) {
	_, err := r.s.st.RecordAttempt(ctx, store.Attempt{Delivery: d.ID, At: r.s.now().UTC(), Outcome: o, Error: msg, Next: next})
	if err != nil {
		log.Error("recording an aggregate report attempt", "outcome", o.String(), "err", err)
	}
	switch o {
	case store.Delivered:
		r.count(func(s *Summary) { s.Sent++ })
		log.Info("aggregate report sent")
	case store.TempFailed:
		r.count(func(s *Summary) { s.Deferred++ })
		log.Warn("aggregate report deferred", "err", msg, "attempts", d.Attempts+1, "next", next.Format(time.RFC3339))
	default:
		r.count(func(s *Summary) { s.Failed++ })
		log.Warn("aggregate report failed", "err", msg, "attempts", d.Attempts+1)
	}
}

// tooLarge handles a report over the size limit of its destination (or
// our maximum): RFC 7489 §7.2.1 forbids sending it there. When no
// destination of the report can take it, an RFC 7489 destination gets the
// short error report of §7.2.2 instead ("an attempt MUST be made to send
// this report to all listed mailto URIs"). The delivery fails either way.
func (r *run) tooLarge(ctx context.Context, log *slog.Logger, d store.Delivery, src source, b *built, f aggregate.Format, limit uint64) {
	why := fmt.Sprintf("report of %d bytes (compressed, base64-encoded) exceeds the limit of %d bytes", aggregate.MIMESize(b.size), limit)
	if f == aggregate.RFC7489 {
		ds, err := r.s.st.Deliveries(ctx, d.ReportID)
		if err == nil {
			var dests []aggregate.Destination
			for _, x := range ds {
				dests = append(dests, aggregate.Destination{URI: "mailto:" + x.Destination.Address, MaxSize: uint64(x.Destination.MaxSize)})
			}
			plan := aggregate.PlanDelivery(f, b.size, r.cfg.MaxSize, dests)
			if plan.Notify {
				e := aggregate.ErrorReport{Date: r.now, Domain: src.domain, ReportID: src.id, Size: plan.Size,
					Submitter: r.cfg.Submitter, URIs: []string{"mailto:" + d.Destination.Address}}
				var msg strings.Builder
				if err := r.cfg.errorReport(&msg, src, d.Destination.Address, e, r.now); err == nil {
					if _, err := r.s.sender.Send(ctx, r.cfg.FromAddress, []string{d.Destination.Address}, strings.NewReader(msg.String())); err != nil {
						log.Warn("sending the error report about a report too large", "err", err)
					} else {
						why += "; error report sent (RFC 7489 §7.2.2)"
					}
				}
			}
		}
	}
	r.record(ctx, log, d, store.PermFailed, why, time.Time{})
}

// dryDelivery writes what the attempt at d would send into the dry-run
// directory.
func (r *run) dryDelivery(ctx context.Context, d store.Delivery) error {
	rep, err := r.s.st.Report(ctx, d.ReportID)
	if err != nil {
		return err
	}
	return r.dryWrite(ctx, r.s.reportSource(rep), d.Destination)
}

// dryPlanned writes the report nr would create, for each destination,
// into the dry-run directory.
func (r *run) dryPlanned(ctx context.Context, nr store.NewReport) error {
	src := r.s.liveSource(r.cfg, nr.Domain, nr.Period, nr.Policy, r.now)
	if len(nr.Destinations) == 0 {
		r.s.log.Info("dry run: the report would have no destination", "domain", nr.Domain, "period", nr.Period.String())
	}
	var errs []error
	for _, d := range nr.Destinations {
		errs = append(errs, r.dryWrite(ctx, src, d))
	}
	return errors.Join(errs...)
}

// dryWrite writes the attachment and the signed message of src for d:
// DIR/<file name>.xml.gz (under DIR/rfc9990/ for that format, as both
// formats name files alike) and DIR/<file name>!<destination>.eml.
func (r *run) dryWrite(ctx context.Context, src source, d store.Destination) error {
	dir := r.opts.DryRun
	f := r.cfg.formatFor(d.Address)
	if f == aggregate.RFC9990 {
		dir = filepath.Join(dir, "rfc9990")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := r.cfg.build(ctx, dir, src, f)
	if err != nil {
		return err
	}
	gz := filepath.Join(dir, b.name)
	if err := os.Rename(b.path, gz); err != nil {
		os.Remove(b.path)
		return err
	}
	b.path = gz
	msg, sig, err := r.cfg.compose(dir, src, b, f, d.Address)
	if err != nil {
		return err
	}
	defer os.Remove(msg.Name())
	defer msg.Close()
	eml := filepath.Join(dir, strings.TrimSuffix(b.name, ".xml.gz")+"!"+d.Address+".eml")
	out, err := os.Create(eml)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.MultiReader(strings.NewReader(sig), msg))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	limit := r.cfg.MaxSize
	if m := uint64(d.MaxSize); m > 0 && m < limit {
		limit = m
	}
	if !aggregate.Fits(b.size, limit) {
		r.s.log.Warn("dry run: this report is too large for its destination and would not be sent", "file", gz, "destination", d.Address)
	}
	r.count(func(s *Summary) { s.Files = append(s.Files, gz, eml) })
	return nil
}
