package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// Store keeps what aggregate reports are made of: rolled-up counts per hour,
// the reports built from them, their outbound queue, the suppression list
// and the lease of the one node that sends. It is safe for concurrent use,
// and with PostgreSQL by several processes on several hosts at once.
//
// Times go in and out as UTC. Errors wrap the driver's with the operation.
type Store interface {
	// Ingest adds a batch of rolled-up rows in one transaction: either all
	// of it counts or none of it does. Counts add up, so the same key from
	// several batches, or from several nodes at once, sums exactly.
	// Writer is the way rows from the milter get here.
	Ingest(ctx context.Context, b *Batch) error

	// Unreported lists, per policy domain, the hours that end at or
	// before q.Before, hold data, and that no report covers yet: the hours
	// at or after the end of the domain's latest report. Data that arrives for an hour
	// before that end is late: it is kept for Records but never reported.
	// By default only domains whose policy had a rua in those hours are
	// listed; q.All lists every domain.
	Unreported(ctx context.Context, q UnreportedQuery) ([]Unreported, error)

	// Policy returns the policy record as last seen for domain within p
	// (the latest one wins when it changed during the period), and false
	// when no row of domain falls in p.
	Policy(ctx context.Context, domain string, p Period) (report.Published, bool, error)

	// Count returns how many distinct records and messages domain has in p.
	Count(ctx context.Context, domain string, p Period) (Counts, error)

	// Records calls fn for each record of domain in p, rolled up over the
	// hours of p, in a stable order (by key hash). Records are read as
	// they are streamed, never all held in memory. An error from fn stops
	// the iteration and is returned.
	Records(ctx context.Context, domain string, p Period, fn func(Record) error) error

	// CreateReport creates the report of r.Domain for r.Period, freezes
	// its records (later rows for the period do not change it) and queues
	// one delivery per destination, all in one transaction. It is
	// idempotent: if the report exists it is returned as it is, with
	// created false, whatever r says otherwise. Its ID is ReportID of the
	// domain and period, so even a report created again from scratch has
	// the same ID. It returns ErrOverlap when another report of the domain
	// overlaps the period, ErrNoData when the period holds no record.
	CreateReport(ctx context.Context, r NewReport) (rep Report, created bool, err error)

	// Report returns the report with the given ID, or ErrNotFound.
	Report(ctx context.Context, id string) (Report, error)

	// Reports lists reports, newest period first.
	Reports(ctx context.Context, f ReportFilter) ([]Report, error)

	// ReportRecords calls fn for each record frozen in report id, in the
	// same order every time, so that building the report again after a
	// crash gives the same XML. An error from fn stops the iteration and
	// is returned. It returns ErrNotFound for an unknown report.
	ReportRecords(ctx context.Context, id string, fn func(Record) error) error

	// Deliveries lists the deliveries of report id.
	Deliveries(ctx context.Context, id string) ([]Delivery, error)

	// Due returns up to limit pending deliveries whose next attempt is at
	// or before now, the most overdue first. Deliveries to a destination
	// on the suppression list are marked DeliverySuppressed instead of
	// being returned. Due claims nothing: only the holder of the sender
	// lease should send.
	Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error)

	// RecordAttempt records the outcome of one attempt at a pending
	// delivery and returns the delivery as it now is; the report's state
	// follows its deliveries. A destination with Options.SuppressAfter
	// permanent failures in a row (and no success in between) is added to
	// the suppression list. It returns ErrNotPending when the delivery is
	// not pending any more and ErrNotFound when it does not exist.
	RecordAttempt(ctx context.Context, a Attempt) (Delivery, error)

	// Attempted counts, per destination, the deliveries whose last
	// attempt was at or after since: what a rate limiter taking over from
	// another node needs to know.
	Attempted(ctx context.Context, since time.Time) ([]DestinationCount, error)

	// Suppress adds a pattern to the suppression list, or replaces the
	// reason of one that is there.
	Suppress(ctx context.Context, s Suppression) error

	// Unsuppress removes a pattern from the suppression list, and resets
	// the failure count of the destinations it covers. Removing a pattern
	// that is not there is not an error.
	Unsuppress(ctx context.Context, pattern string) error

	// Suppressions lists the suppression list, sorted by pattern.
	Suppressions(ctx context.Context) ([]Suppression, error)

	// TryLease makes the caller the holder of the named lease, for
	// example "sender", or returns ErrLeaseHeld when someone else holds
	// it. With PostgreSQL the lease is database-wide, across nodes; with
	// SQLite it is host-wide. The holder must stop acting as soon as the
	// lease's Lost channel is closed.
	TryLease(ctx context.Context, name string) (Lease, error)

	// Expire deletes data older than before: hourly counts of earlier
	// hours, finished reports (sent, failed or skipped) that ended at or
	// before it with their records and deliveries, and record keys no
	// longer used. Pending reports are kept whatever their age.
	Expire(ctx context.Context, before time.Time) (Expired, error)

	// Close releases the store's connections. Leases should be released
	// first.
	Close() error
}

// Errors the store returns; test with errors.Is.
var (
	// ErrNotFound is returned for a report or delivery that does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrOverlap is returned by CreateReport when another report of the
	// same domain overlaps the period asked for.
	ErrOverlap = errors.New("store: period overlaps an existing report")
	// ErrNoData is returned by CreateReport when the period holds no record.
	ErrNoData = errors.New("store: no data in period")
	// ErrNotPending is returned by RecordAttempt for a finished delivery.
	ErrNotPending = errors.New("store: delivery is not pending")
	// ErrLeaseHeld is returned by TryLease when another holder has the lease.
	ErrLeaseHeld = errors.New("store: lease held by another holder")
	// ErrBadPeriod is returned for a period that is empty or not on hour
	// boundaries.
	ErrBadPeriod = errors.New("store: period must be whole UTC hours, begin before end")
	// ErrSchemaTooNew is returned by Open for a database written by a newer
	// dmarcd than this one.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this program")
)

// Period is a half-open interval of UTC time, [Begin, End). Store methods
// want whole hours, so that every period of one hour or more adds up
// exactly from the hourly counts.
type Period struct {
	Begin, End time.Time
}

// Check returns ErrBadPeriod unless p is non-empty and on hour boundaries.
func (p Period) Check() error {
	if !p.Begin.Before(p.End) || !Hour(p.Begin).Equal(p.Begin) || !Hour(p.End).Equal(p.End) {
		return fmt.Errorf("%w: %v", ErrBadPeriod, p)
	}
	return nil
}

// Contains reports whether t is within p.
func (p Period) Contains(t time.Time) bool {
	return !t.Before(p.Begin) && t.Before(p.End)
}

// String formats p as RFC 3339 begin and end.
func (p Period) String() string {
	return p.Begin.UTC().Format(time.RFC3339) + "/" + p.End.UTC().Format(time.RFC3339)
}

// Hour returns the start of the UTC hour that holds t: the bucket rows are
// counted in.
func Hour(t time.Time) time.Time {
	return t.UTC().Truncate(time.Hour)
}

// UnreportedQuery selects what Unreported lists.
type UnreportedQuery struct {
	// Before excludes the hour holding Before and later ones: pass now
	// minus a grace time for rows still in the Writers' queues, so that an
	// hour still filling is not listed.
	Before time.Time
	// All lists domains whose policy had no rua too.
	All bool
	// Messages counts the messages of each hour: a sum over the hour's
	// records, which the scheduler, looking only for hours, does without.
	Messages bool
}

// Unreported is one policy domain's data that no report covers yet.
type Unreported struct {
	Domain string
	// Policy is the policy record as last seen in these hours.
	Policy report.Published
	// HasRUA reports whether the policy had a rua in any of these hours.
	HasRUA bool
	// Hours lists the hours with data, oldest first.
	Hours []HourCount
}

// HourCount is an hour with data and, when UnreportedQuery.Messages asks
// for it, the number of messages counted in it (0 otherwise).
type HourCount struct {
	Hour     time.Time
	Messages int64
}

// Counts is how much data there is: distinct records and messages.
type Counts struct {
	Records  int64
	Messages int64
}

// NewReport asks for a report, see Store.CreateReport.
type NewReport struct {
	Domain string
	Period Period
	// Policy is the policy_published of the report; when its Domain is
	// empty, the one of Store.Policy for the period is used.
	Policy report.Published
	// Destinations are where the report goes, one delivery each; none
	// makes a report in state ReportSkipped.
	Destinations []Destination
	// NotBefore delays the first attempt; zero means now.
	NotBefore time.Time
}

// Destination is one place a report is sent to.
type Destination struct {
	// Address is the mail address of a mailto: rua URI.
	Address string
	// MaxSize is the size limit of the URI (RFC 7489 "!" suffix) in
	// bytes, zero for none.
	MaxSize int64
}

// ReportState is where a report is in its life.
type ReportState string

// The states of a report. A report is pending while any of its deliveries
// is; then sent if any delivery succeeded, failed if none did and one
// failed, skipped if it had no destination or all were suppressed.
const (
	ReportPending ReportState = "pending"
	ReportSent    ReportState = "sent"
	ReportFailed  ReportState = "failed"
	ReportSkipped ReportState = "skipped"
)

// Report is one aggregate report of ours, for one domain and period.
type Report struct {
	// ID is the report_id, see ReportID.
	ID     string
	Domain string
	Period Period
	// Policy is the policy_published, frozen at creation.
	Policy   report.Published
	State    ReportState
	Records  int64 // distinct records
	Messages int64
	// Attempts counts the delivery attempts of all destinations.
	Attempts int
	// NextAttempt is the earliest next attempt of a pending delivery,
	// zero when none is pending.
	NextAttempt time.Time
	// LastError is the error of the latest failed attempt, if any.
	LastError string
	Created   time.Time
	Updated   time.Time
}

// ReportFilter selects reports for Store.Reports. Zero fields select all.
type ReportFilter struct {
	Domain string
	State  ReportState
	// Limit caps the count; zero means 1,000.
	Limit int
}

// DeliveryState is where one delivery of a report is.
type DeliveryState string

// The states of a delivery.
const (
	DeliveryPending    DeliveryState = "pending"
	DeliverySent       DeliveryState = "sent"
	DeliveryFailed     DeliveryState = "failed"
	DeliverySuppressed DeliveryState = "suppressed"
)

// Delivery is one report to one destination: the unit of the outbound
// queue, of retries and of rate limits.
type Delivery struct {
	ID          int64
	ReportID    string
	Domain      string // the report's policy domain
	Period      Period // the report's period
	Destination Destination
	State       DeliveryState
	Attempts    int
	NextAttempt time.Time // zero unless pending
	LastAttempt time.Time // zero before the first attempt
	LastError   string
	Sent        time.Time // zero unless sent
	Created     time.Time
}

// Outcome is the result of one delivery attempt.
type Outcome int

// The outcomes of an attempt.
const (
	// Delivered: the destination took the report.
	Delivered Outcome = iota + 1
	// TempFailed: try again at Attempt.Next.
	TempFailed
	// PermFailed: give up on this delivery; counts towards suppression.
	PermFailed
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case TempFailed:
		return "tempfailed"
	case PermFailed:
		return "permfailed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Attempt is the outcome of one try at a delivery.
type Attempt struct {
	Delivery int64
	At       time.Time
	Outcome  Outcome
	// Error says why it failed.
	Error string
	// Next is when to try again after TempFailed; the sender picks it
	// (backoff is the sender's policy). Zero, or not after At, means a
	// minute after At.
	Next time.Time
}

// DestinationCount is how many deliveries to one destination were
// attempted in a time window.
type DestinationCount struct {
	Destination string
	Domain      string // the destination's domain
	Count       int
}

// Suppression is one entry of the list of destinations no report goes to
// (OpenDMARC's NoReportsList).
type Suppression struct {
	// Pattern is an address (user@example.com) or a domain (example.com),
	// which covers the addresses at it and at its subdomains. Matching
	// ignores case.
	Pattern string
	Reason  string
	// Auto is true for entries added after repeated permanent failures.
	Auto    bool
	Created time.Time
}

// Matches reports whether the suppression covers address.
func (s Suppression) Matches(address string) bool {
	return suppressionMatches(s.Pattern, address)
}

// Lease is held by one holder at a time. See Store.TryLease.
type Lease interface {
	// Name is the name the lease was taken under.
	Name() string
	// Lost is closed when the lease is lost without Release: the
	// connection that held it died. The holder must stop then.
	Lost() <-chan struct{}
	// Release gives the lease up. It is safe to call more than once.
	Release(ctx context.Context) error
}

// Expired counts what Expire deleted.
type Expired struct {
	Counts  int64 // hourly counts
	Hours   int64 // hourly domain summaries
	Keys    int64 // record keys
	Reports int64 // reports, with their records and deliveries
}
