package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/report"
)

// Received keeps the reports that other receivers send to our users:
// aggregate reports with their records, and failure reports. It is the
// storage under report/received (the import command, the summaries and
// the dashboard); *DB implements it on both drivers.
//
// A report is written whole in one transaction or not at all, and
// identified by its Key: adding a report whose key is already stored adds
// nothing and says so (a duplicate, not an error), on one node or several
// at once.
//
// The queries aggregate by policy domain (the policy_published domain of
// aggregate reports, Reported-Domain of failure reports) and UTC day. An
// aggregate report's messages count on one day: the UTC day holding the
// middle of its date range, so that a daily report whose day is local
// time (a reporter in UTC-8 sends 08:00 to 08:00 UTC) counts on the day
// it is about.
type Received interface {
	// AddReceived stores an aggregate report with its records in one
	// transaction. It returns the report's ID and whether it was added:
	// false, with the ID of the stored one, when a report with the same
	// Key is already stored. Nothing of a report whose insert fails
	// stays.
	AddReceived(ctx context.Context, r *ReceivedReport) (id int64, added bool, err error)

	// AddFailure stores a failure report, once per Key, as AddReceived.
	AddFailure(ctx context.Context, f *ReceivedFailure) (id int64, added bool, err error)

	// ReceivedDomains lists the policy domains that have aggregate or
	// failure reports within f (f.Domain, when set, lists that one
	// only), sorted by name.
	ReceivedDomains(ctx context.Context, f ReceivedFilter) ([]ReceivedDomain, error)

	// ReceivedDays returns the counts of each domain and UTC day with
	// data within f, sorted by domain and day.
	ReceivedDays(ctx context.Context, f ReceivedFilter) ([]ReceivedDay, error)

	// ReceivedSources returns the counts per source IP within f, the
	// most messages first, or with q.Failing the sources with
	// non-compliant messages, the most of those first; ties by address
	// (as text).
	ReceivedSources(ctx context.Context, f ReceivedFilter, q SourceQuery) ([]ReceivedSource, error)

	// ReceivedReporters returns who sent the aggregate reports within f,
	// the most messages first; ties by name.
	ReceivedReporters(ctx context.Context, f ReceivedFilter, limit int) ([]ReceivedReporter, error)

	// ReceivedPolicies returns, per domain, day and published p, how
	// many reports (and messages) saw that policy, sorted by domain,
	// day and p: what tells when a domain changed its policy.
	ReceivedPolicies(ctx context.Context, f ReceivedFilter) ([]ReceivedPolicy, error)

	// ReceivedReports lists aggregate reports within f, newest date
	// range first, without their records; limit 0 means 1,000.
	ReceivedReports(ctx context.Context, f ReceivedFilter, limit int) ([]ReceivedReport, error)

	// ReceivedRecords calls fn for each record of report id, in document
	// order. It returns ErrNotFound for an unknown report; an error from
	// fn stops it and is returned.
	ReceivedRecords(ctx context.Context, id int64, fn func(ReceivedRecord) error) error

	// ReceivedFailures lists failure reports within f, newest first;
	// limit 0 means 1,000.
	ReceivedFailures(ctx context.Context, f ReceivedFilter, limit int) ([]ReceivedFailure, error)

	// ReceivedTotals counts the rows of the received tables.
	ReceivedTotals(ctx context.Context) (ReceivedTotals, error)
}

var _ Received = (*DB)(nil)

// ReceivedReport is one aggregate report someone sent us. Fields marked
// "set by the store" are ignored by AddReceived and filled on read.
type ReceivedReport struct {
	// ID is the store's number of the report (set by the store).
	ID int64 `json:"id"`
	// Key identifies the report for idempotence, ingest's
	// Aggregate.Key: the reporting organisation and the report_id.
	// Required to add; only its hash is stored, so it is "" on read.
	Key string `json:"-"`

	Org          string `json:"org"`
	Email        string `json:"email"`
	ExtraContact string `json:"extra_contact,omitempty"`
	ReportID     string `json:"report_id"`
	// Begin and End are the report's date_range, UTC.
	Begin time.Time `json:"begin"`
	End   time.Time `json:"end"`
	// Day is the UTC day the report's messages count on: the day
	// holding the middle of [Begin, End] (set by the store).
	Day time.Time `json:"day"`
	// Policy is policy_published; Policy.Domain is the policy domain the
	// report is about, and is required.
	Policy    report.Published `json:"policy"`
	Format    string           `json:"format"`
	Version   string           `json:"version,omitempty"`
	Generator string           `json:"generator,omitempty"`
	// Errors are the report's <error> elements; Warnings what the parser
	// tolerated.
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Source is where the report was read: the file and the layers
	// inside it ("inbox.mbox#12:report.xml.gz").
	Source string `json:"source"`
	// Imported is when it was stored (set by the store).
	Imported time.Time `json:"imported"`

	// NumRecords, Messages and Compliant total the records (set by the
	// store).
	NumRecords int64 `json:"records"`
	Messages   int64 `json:"messages"`
	Compliant  int64 `json:"compliant"`

	// Records are the report's records, in document order. AddReceived
	// stores them; read them back with ReceivedRecords.
	Records []ReceivedRecord `json:"-"`
}

// ReceivedRecord is one <record> of an aggregate report. Words
// (disposition, results) are stored in lower case, domains without the
// final dot.
type ReceivedRecord struct {
	SourceIP netip.Addr `json:"source_ip"`
	Count    int64      `json:"count"`
	// policy_evaluated: Disposition is none, quarantine, reject, or
	// RFC 9990's pass; DKIM and SPF are pass or fail.
	Disposition string            `json:"disposition"`
	DKIM        string            `json:"dkim"`
	SPF         string            `json:"spf"`
	Reasons     []report.Override `json:"reasons,omitempty"`
	// identifiers
	HeaderFrom   string `json:"header_from"`
	EnvelopeFrom string `json:"envelope_from,omitempty"`
	EnvelopeTo   string `json:"envelope_to,omitempty"`
	// auth_results, in document order.
	AuthDKIM []report.DKIMResult `json:"auth_dkim,omitempty"`
	AuthSPF  []report.SPFResult  `json:"auth_spf,omitempty"`
}

// ReceivedFailure is one failure report (RFC 6591 ARF with the RFC 9991
// fields), as report/ingest reads it.
type ReceivedFailure struct {
	ID  int64  `json:"id"` // set by the store
	Key string `json:"-"`  // ingest's Failure.Key; required to add, "" on read

	ReportedDomain string     `json:"reported_domain"`
	SourceIP       netip.Addr `json:"source_ip"` // invalid when the report had none
	// Day is the UTC day of ArrivalDate, else of ReportDate, else of the
	// import (set by the store).
	Day               time.Time `json:"day"`
	FeedbackType      string    `json:"feedback_type"`
	Version           string    `json:"version,omitempty"`
	UserAgent         string    `json:"user_agent,omitempty"`
	AuthFailure       string    `json:"auth_failure,omitempty"`
	DeliveryResult    string    `json:"delivery_result,omitempty"`
	IdentityAlignment []string  `json:"identity_alignment,omitempty"`
	Incidents         int64     `json:"incidents,omitempty"`
	ArrivalDate       time.Time `json:"arrival_date"` // zero when unknown

	OriginalMailFrom   string   `json:"original_mail_from"`
	OriginalRcptTo     []string `json:"original_rcpt_to,omitempty"`
	OriginalEnvelopeID string   `json:"original_envelope_id,omitempty"`
	OriginalFrom       string   `json:"original_from,omitempty"`
	OriginalSubject    string   `json:"original_subject,omitempty"`
	OriginalMessageID  string   `json:"original_message_id,omitempty"`

	DKIMDomain            string   `json:"dkim_domain,omitempty"`
	DKIMIdentity          string   `json:"dkim_identity,omitempty"`
	DKIMSelector          string   `json:"dkim_selector,omitempty"`
	SPFDNS                []string `json:"spf_dns,omitempty"`
	AuthenticationResults []string `json:"authentication_results,omitempty"`
	ReportedURI           []string `json:"reported_uri,omitempty"`

	// The report message: its sender, display name, Reporting-MTA,
	// Message-ID, Subject and Date.
	Reporter        string    `json:"reporter"`
	ReporterName    string    `json:"reporter_name,omitempty"`
	ReportingMTA    string    `json:"reporting_mta,omitempty"`
	ReportMessageID string    `json:"report_message_id,omitempty"`
	ReportSubject   string    `json:"report_subject,omitempty"`
	ReportDate      time.Time `json:"report_date"`

	// Headers is the reported message's header section, as capped by the
	// parser; HeadersTruncated says it was cut.
	Headers          string `json:"headers"`
	HeadersTruncated bool   `json:"headers_truncated,omitempty"`
	// Fields are all the fields of the feedback-report part, in order,
	// each a name and a value.
	Fields   [][2]string `json:"fields,omitempty"`
	Warnings []string    `json:"warnings,omitempty"`
	Source   string      `json:"source"`
	Imported time.Time   `json:"imported"` // set by the store
}

// ReceivedFilter selects received data: a policy domain ("" for all)
// and the UTC days [From, To). From and To are truncated to their UTC
// day; a zero From or To leaves that side open.
type ReceivedFilter struct {
	Domain   string
	From, To time.Time
}

// SourceQuery says which source IPs ReceivedSources returns.
type SourceQuery struct {
	// Limit caps how many; 0 means 1,000.
	Limit int
	// Failing returns only the sources with non-compliant messages,
	// those with the most first.
	Failing bool
}

// ReceivedCounts are the messages of some received records and how they
// fared. Each count is a number of messages (the sum of record counts):
//
//   - Compliant: DMARC pass, as the reporter evaluated it: policy_evaluated
//     dkim or spf is pass (an aligned identifier authenticated).
//   - DKIMAligned, SPFAligned: policy_evaluated dkim, spf is pass.
//   - DKIMPass: a DKIM result in auth_results is pass, for any domain,
//     aligned or not. SPFPass: likewise an SPF result (any scope).
//   - Authenticated: DKIMPass or SPFPass or Compliant (a report without
//     auth_results still authenticated what its policy_evaluated passed).
//   - None, Quarantine, Reject: the disposition applied; None counts
//     RFC 9990's "pass" too. OtherDisposition counts words outside the
//     RFCs that the parser kept.
type ReceivedCounts struct {
	Messages         int64 `json:"messages"`
	Compliant        int64 `json:"compliant"`
	DKIMAligned      int64 `json:"dkim_aligned"`
	SPFAligned       int64 `json:"spf_aligned"`
	DKIMPass         int64 `json:"dkim_pass"`
	SPFPass          int64 `json:"spf_pass"`
	Authenticated    int64 `json:"authenticated"`
	None             int64 `json:"none"`
	Quarantine       int64 `json:"quarantine"`
	Reject           int64 `json:"reject"`
	OtherDisposition int64 `json:"other_disposition"`
}

// Add adds o to c.
func (c *ReceivedCounts) Add(o ReceivedCounts) {
	c.Messages += o.Messages
	c.Compliant += o.Compliant
	c.DKIMAligned += o.DKIMAligned
	c.SPFAligned += o.SPFAligned
	c.DKIMPass += o.DKIMPass
	c.SPFPass += o.SPFPass
	c.Authenticated += o.Authenticated
	c.None += o.None
	c.Quarantine += o.Quarantine
	c.Reject += o.Reject
	c.OtherDisposition += o.OtherDisposition
}

// ReceivedDomain is one policy domain with received reports.
type ReceivedDomain struct {
	Domain   string
	Reports  int64 // aggregate reports
	Messages int64
	Failures int64 // failure reports
	// First and Last are the first and last UTC days with a report.
	First, Last time.Time
}

// ReceivedDay is one domain's data on one UTC day.
type ReceivedDay struct {
	Domain  string
	Day     time.Time
	Reports int64
	ReceivedCounts
}

// ReceivedSource is the data of one source IP.
type ReceivedSource struct {
	IP      netip.Addr
	Reports int64 // distinct reports that name it
	ReceivedCounts
}

// ReceivedReporter is one reporting organisation.
type ReceivedReporter struct {
	// Reporter is the grouping key: org_name in lower case, or the
	// email without one. Org and Email are as one of its reports wrote
	// them.
	Reporter, Org, Email string
	Reports              int64
	Messages, Compliant  int64
	First, Last          time.Time // UTC days
}

// ReceivedPolicy is how many reports of one domain and day saw one
// published p.
type ReceivedPolicy struct {
	Domain   string
	Day      time.Time
	P        string
	Reports  int64
	Messages int64
	// LastEnd is the latest end of those reports' date ranges.
	LastEnd time.Time
}

// ReceivedTotals counts rows of the received tables.
type ReceivedTotals struct {
	Reports, Records, Failures int64
}

// day returns the Unix second of the UTC day holding t.
func dayOf(t time.Time) int64 {
	return t.UTC().Truncate(24 * time.Hour).Unix()
}

// reportDay is the day a report with this date range counts on.
func reportDay(begin, end time.Time) int64 {
	if end.Before(begin) {
		end = begin
	}
	return dayOf(begin.Add(end.Sub(begin) / 2))
}

func keyHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// recordFlags computes what ReceivedCounts counts of one record.
type recordFlags struct {
	compliant, dkimAligned, spfAligned, dkimPass, spfPass, authenticated int64
}

func flagsOf(r *ReceivedRecord) recordFlags {
	var f recordFlags
	da, sa := word(r.DKIM) == "pass", word(r.SPF) == "pass"
	dp, sp := false, false
	for _, d := range r.AuthDKIM {
		dp = dp || word(d.Result) == "pass"
	}
	for _, s := range r.AuthSPF {
		sp = sp || word(s.Result) == "pass"
	}
	f.dkimAligned, f.spfAligned = flag(da), flag(sa)
	f.compliant = flag(da || sa)
	f.dkimPass, f.spfPass = flag(dp), flag(sp)
	f.authenticated = flag(da || sa || dp || sp)
	return f
}

func textList(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = text(v)
	}
	return out
}

// jsonList is a list as stored: a JSON array, "[]" when empty.
func jsonList[T any](s []T) string {
	if len(s) == 0 {
		return "[]"
	}
	return mustJSON(s)
}

// receivedHook, when set (by tests), runs in AddReceived's transaction
// between the report and its records; its error fails the insert.
var receivedHook func() error

var insertReceivedRecords = bulkInsert{
	`INSERT INTO received_records (report, seq, policy_domain, day, source_ip, count, disposition, dkim, spf, reasons,
		header_from, envelope_from, envelope_to, auth_dkim, auth_spf,
		compliant, dkim_aligned, spf_aligned, dkim_pass, spf_pass, authenticated)`,
	``,
	21}

// AddReceived implements Received.
func (db *DB) AddReceived(ctx context.Context, r *ReceivedReport) (int64, bool, error) {
	domain := domainName(r.Policy.Domain)
	switch {
	case r.Key == "":
		return 0, false, errors.New("add received report: no key")
	case domain == "":
		return 0, false, errors.New("add received report: no policy domain")
	}
	day := reportDay(r.Begin, r.End)
	var messages, compliant int64
	flags := make([]recordFlags, len(r.Records))
	for i := range r.Records {
		rec := &r.Records[i]
		if rec.Count < 0 {
			return 0, false, fmt.Errorf("add received report %s: record %d: negative count", r.ReportID, i+1)
		}
		flags[i] = flagsOf(rec)
		messages += rec.Count
		compliant += rec.Count * flags[i].compliant
	}
	policy := r.Policy
	policy.Domain = domain
	policy.RUA = nil
	reporter := word(r.Org)
	if reporter == "" {
		reporter = word(r.Email)
	}
	now := db.now()
	var id int64
	added := true
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q(`INSERT INTO received_reports
			(key_hash, reporter, org, email, extra_contact, report_id, policy_domain, begin_at, end_at, day,
			policy, p, format, version, generator, errors, warnings, records, messages, compliant, source, imported_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (key_hash) DO NOTHING RETURNING id`),
			keyHash(r.Key), reporter, text(r.Org), text(r.Email), text(r.ExtraContact), text(r.ReportID), domain,
			r.Begin.Unix(), r.End.Unix(), day, mustJSON(policy), word(policy.P), word(r.Format), text(r.Version),
			text(r.Generator), jsonList(textList(r.Errors)), jsonList(textList(r.Warnings)), int64(len(r.Records)),
			messages, compliant, text(r.Source), now.Unix()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			added = false
			return tx.QueryRowContext(ctx, db.q(`SELECT id FROM received_reports WHERE key_hash = ?`), keyHash(r.Key)).Scan(&id)
		} else if err != nil {
			return err
		}
		if receivedHook != nil {
			if err := receivedHook(); err != nil {
				return err
			}
		}
		return db.insertMany(ctx, tx, insertReceivedRecords, nil, len(r.Records), func(i int) []any {
			rec := &r.Records[i]
			f := flags[i]
			return []any{id, int64(i), domain, day, ipString(rec.SourceIP), rec.Count, word(rec.Disposition),
				word(rec.DKIM), word(rec.SPF), jsonList(textOverrides(rec.Reasons)), domainName(rec.HeaderFrom),
				domainName(rec.EnvelopeFrom), domainName(rec.EnvelopeTo), jsonList(textDKIM(rec.AuthDKIM)),
				jsonList(textSPF(rec.AuthSPF)), f.compliant, f.dkimAligned, f.spfAligned, f.dkimPass, f.spfPass,
				f.authenticated}
		})
	})
	if err != nil {
		return 0, false, fmt.Errorf("add received report %q from %q: %w", r.ReportID, r.Org, err)
	}
	if added {
		r.ID, r.Day, r.Imported = id, unix(day), unix(now.Unix())
		r.NumRecords, r.Messages, r.Compliant = int64(len(r.Records)), messages, compliant
		if db.afterSave != nil {
			db.afterSave(ctx)
		}
	}
	return id, added, nil
}

func textOverrides(s []report.Override) []report.Override {
	out := make([]report.Override, len(s))
	for i, o := range s {
		out[i] = report.Override{Type: word(o.Type), Comment: text(o.Comment)}
	}
	return out
}

func textDKIM(s []report.DKIMResult) []report.DKIMResult {
	out := make([]report.DKIMResult, len(s))
	for i, d := range s {
		out[i] = report.DKIMResult{Domain: domainName(d.Domain), Selector: text(d.Selector), Result: word(d.Result)}
	}
	return out
}

func textSPF(s []report.SPFResult) []report.SPFResult {
	out := make([]report.SPFResult, len(s))
	for i, d := range s {
		out[i] = report.SPFResult{Domain: domainName(d.Domain), Scope: word(d.Scope), Result: word(d.Result)}
	}
	return out
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

// AddFailure implements Received.
func (db *DB) AddFailure(ctx context.Context, f *ReceivedFailure) (int64, bool, error) {
	if f.Key == "" {
		return 0, false, errors.New("add failure report: no key")
	}
	now := db.now()
	dayAt := now
	switch {
	case !f.ArrivalDate.IsZero():
		dayAt = f.ArrivalDate
	case !f.ReportDate.IsZero():
		dayAt = f.ReportDate
	}
	day := dayOf(dayAt)
	fields := make([][2]string, len(f.Fields))
	for i, fl := range f.Fields {
		fields[i] = [2]string{text(fl[0]), text(fl[1])}
	}
	var id int64
	added := true
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q(`INSERT INTO received_failures
			(key_hash, reported_domain, day, source_ip, feedback_type, version, user_agent, auth_failure,
			delivery_result, identity_alignment, incidents, arrival_at, original_mail_from, original_rcpt_to,
			original_envelope_id, original_from, original_subject, original_message_id, dkim_domain, dkim_identity,
			dkim_selector, spf_dns, auth_results, reported_uri, reporter, reporter_name, reporting_mta,
			report_message_id, report_subject, report_date, headers, headers_truncated, fields, warnings, source,
			imported_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (key_hash) DO NOTHING RETURNING id`),
			keyHash(f.Key), domainName(f.ReportedDomain), day, ipString(f.SourceIP), word(f.FeedbackType),
			text(f.Version), text(f.UserAgent), word(f.AuthFailure), word(f.DeliveryResult),
			jsonList(textList(f.IdentityAlignment)), f.Incidents, nullTime(f.ArrivalDate), text(f.OriginalMailFrom),
			jsonList(textList(f.OriginalRcptTo)), text(f.OriginalEnvelopeID), text(f.OriginalFrom),
			text(f.OriginalSubject), text(f.OriginalMessageID), domainName(f.DKIMDomain), text(f.DKIMIdentity),
			text(f.DKIMSelector), jsonList(textList(f.SPFDNS)), jsonList(textList(f.AuthenticationResults)),
			jsonList(textList(f.ReportedURI)), text(f.Reporter), text(f.ReporterName), text(f.ReportingMTA),
			text(f.ReportMessageID), text(f.ReportSubject), nullTime(f.ReportDate), text(f.Headers),
			boolInt(f.HeadersTruncated), jsonList(fields), jsonList(textList(f.Warnings)), text(f.Source),
			now.Unix()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			added = false
			return tx.QueryRowContext(ctx, db.q(`SELECT id FROM received_failures WHERE key_hash = ?`), keyHash(f.Key)).Scan(&id)
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("add failure report from %q: %w", f.Reporter, err)
	}
	if added {
		f.ID, f.Day, f.Imported = id, unix(day), unix(now.Unix())
		if db.afterSave != nil {
			db.afterSave(ctx)
		}
	}
	return id, added, nil
}

// where returns the WHERE clause of f over a table whose domain column is
// col, and its arguments.
func (f ReceivedFilter) where(col string) (string, []any) {
	conds, args := []string{"1 = 1"}, []any{}
	if f.Domain != "" {
		conds, args = append(conds, col+" = ?"), append(args, domainName(f.Domain))
	}
	if !f.From.IsZero() {
		conds, args = append(conds, "day >= ?"), append(args, dayOf(f.From))
	}
	if !f.To.IsZero() {
		conds, args = append(conds, "day < ?"), append(args, dayOf(f.To))
	}
	return strings.Join(conds, " AND "), args
}

// countSums are the sums of ReceivedCounts over received_records rows, in
// the order scanCounts reads them.
const countSums = `CAST(COALESCE(SUM(count), 0) AS BIGINT),
	CAST(COALESCE(SUM(count * compliant), 0) AS BIGINT),
	CAST(COALESCE(SUM(count * dkim_aligned), 0) AS BIGINT),
	CAST(COALESCE(SUM(count * spf_aligned), 0) AS BIGINT),
	CAST(COALESCE(SUM(count * dkim_pass), 0) AS BIGINT),
	CAST(COALESCE(SUM(count * spf_pass), 0) AS BIGINT),
	CAST(COALESCE(SUM(count * authenticated), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN disposition IN ('none', 'pass') THEN count ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN disposition = 'quarantine' THEN count ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN disposition = 'reject' THEN count ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN disposition NOT IN ('none', 'pass', 'quarantine', 'reject') THEN count ELSE 0 END), 0) AS BIGINT)`

// countDests returns the destinations of countSums in c.
func countDests(c *ReceivedCounts) []any {
	return []any{&c.Messages, &c.Compliant, &c.DKIMAligned, &c.SPFAligned, &c.DKIMPass, &c.SPFPass,
		&c.Authenticated, &c.None, &c.Quarantine, &c.Reject, &c.OtherDisposition}
}

// ReceivedDomains implements Received.
func (db *DB) ReceivedDomains(ctx context.Context, f ReceivedFilter) ([]ReceivedDomain, error) {
	byName := map[string]*ReceivedDomain{}
	var names []string
	get := func(d string) *ReceivedDomain {
		if x, ok := byName[d]; ok {
			return x
		}
		x := &ReceivedDomain{Domain: d}
		byName[d] = x
		names = append(names, d)
		return x
	}
	widen := func(x *ReceivedDomain, first, last int64) {
		if x.First.IsZero() || unix(first).Before(x.First) {
			x.First = unix(first)
		}
		if unix(last).After(x.Last) {
			x.Last = unix(last)
		}
	}
	where, args := f.where("policy_domain")
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT policy_domain, COUNT(*), CAST(COALESCE(SUM(messages), 0) AS BIGINT), MIN(day), MAX(day)
		FROM received_reports WHERE `+where+` GROUP BY policy_domain`), args...)
	if err != nil {
		return nil, fmt.Errorf("received domains: %w", err)
	}
	for rows.Next() {
		var d string
		var n, m, first, last int64
		if err := rows.Scan(&d, &n, &m, &first, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("received domains: %w", err)
		}
		x := get(d)
		x.Reports, x.Messages = n, m
		widen(x, first, last)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("received domains: %w", err)
	}
	where, args = f.where("reported_domain")
	rows, err = db.r.QueryContext(ctx, db.q(`SELECT reported_domain, COUNT(*), MIN(day), MAX(day)
		FROM received_failures WHERE `+where+` GROUP BY reported_domain`), args...)
	if err != nil {
		return nil, fmt.Errorf("received domains: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var n, first, last int64
		if err := rows.Scan(&d, &n, &first, &last); err != nil {
			return nil, fmt.Errorf("received domains: %w", err)
		}
		x := get(d)
		x.Failures = n
		widen(x, first, last)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("received domains: %w", err)
	}
	out := make([]ReceivedDomain, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	slices.SortFunc(out, func(a, b ReceivedDomain) int { return strings.Compare(a.Domain, b.Domain) })
	return out, nil
}

// ReceivedDays implements Received.
func (db *DB) ReceivedDays(ctx context.Context, f ReceivedFilter) ([]ReceivedDay, error) {
	where, args := f.where("policy_domain")
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT policy_domain, day, `+countSums+`
		FROM received_records WHERE `+where+` GROUP BY policy_domain, day ORDER BY policy_domain, day`), args...)
	if err != nil {
		return nil, fmt.Errorf("received days: %w", err)
	}
	var out []ReceivedDay
	idx := map[[2]any]int{}
	for rows.Next() {
		var d ReceivedDay
		var day int64
		if err := rows.Scan(append([]any{&d.Domain, &day}, countDests(&d.ReceivedCounts)...)...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("received days: %w", err)
		}
		d.Day = unix(day)
		idx[[2]any{d.Domain, day}] = len(out)
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("received days: %w", err)
	}
	// Reports per day; a report without records has a day of its own.
	rows, err = db.r.QueryContext(ctx, db.q(`SELECT policy_domain, day, COUNT(*) FROM received_reports WHERE `+where+`
		GROUP BY policy_domain, day`), args...)
	if err != nil {
		return nil, fmt.Errorf("received days: %w", err)
	}
	defer rows.Close()
	extra := false
	for rows.Next() {
		var domain string
		var day, n int64
		if err := rows.Scan(&domain, &day, &n); err != nil {
			return nil, fmt.Errorf("received days: %w", err)
		}
		if i, ok := idx[[2]any{domain, day}]; ok {
			out[i].Reports = n
		} else {
			out = append(out, ReceivedDay{Domain: domain, Day: unix(day), Reports: n})
			extra = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("received days: %w", err)
	}
	if extra {
		slices.SortFunc(out, func(a, b ReceivedDay) int {
			return cmp.Or(strings.Compare(a.Domain, b.Domain), a.Day.Compare(b.Day))
		})
	}
	return out, nil
}

// ReceivedSources implements Received.
func (db *DB) ReceivedSources(ctx context.Context, f ReceivedFilter, q SourceQuery) ([]ReceivedSource, error) {
	where, args := f.where("policy_domain")
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	// Columns 3 and 4 of the subquery are messages and compliant.
	outer := `ORDER BY s.c3 DESC, s.ip`
	if q.Failing {
		outer = `WHERE s.c3 > s.c4 ORDER BY s.c3 - s.c4 DESC, s.ip`
	}
	cols := strings.Split(countSums, ",\n")
	for i := range cols {
		cols[i] = strings.TrimSpace(cols[i]) + " AS c" + strconv.Itoa(i+3)
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT s.* FROM (SELECT source_ip AS ip, COUNT(DISTINCT report) AS reports, `+
		strings.Join(cols, ", ")+` FROM received_records WHERE `+where+` GROUP BY source_ip) s `+outer+
		` LIMIT `+strconv.Itoa(limit)), args...)
	out, err := collect(rows, err, func(rows *sql.Rows) (s ReceivedSource, err error) {
		var ip string
		if err := rows.Scan(append([]any{&ip, &s.Reports}, countDests(&s.ReceivedCounts)...)...); err != nil {
			return s, err
		}
		if ip != "" {
			if s.IP, err = netip.ParseAddr(ip); err != nil {
				return s, fmt.Errorf("source_ip %q: %w", ip, err)
			}
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("received sources: %w", err)
	}
	return out, nil
}

// ReceivedReporters implements Received.
func (db *DB) ReceivedReporters(ctx context.Context, f ReceivedFilter, limit int) ([]ReceivedReporter, error) {
	where, args := f.where("policy_domain")
	if limit <= 0 {
		limit = 1000
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT reporter, MAX(org), MAX(email), COUNT(*),
		CAST(COALESCE(SUM(messages), 0) AS BIGINT) AS m, CAST(COALESCE(SUM(compliant), 0) AS BIGINT), MIN(day), MAX(day)
		FROM received_reports WHERE `+where+` GROUP BY reporter ORDER BY m DESC, reporter LIMIT `+strconv.Itoa(limit)), args...)
	out, err := collect(rows, err, func(rows *sql.Rows) (r ReceivedReporter, err error) {
		var first, last int64
		err = rows.Scan(&r.Reporter, &r.Org, &r.Email, &r.Reports, &r.Messages, &r.Compliant, &first, &last)
		r.First, r.Last = unix(first), unix(last)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("received reporters: %w", err)
	}
	return out, nil
}

// ReceivedPolicies implements Received.
func (db *DB) ReceivedPolicies(ctx context.Context, f ReceivedFilter) ([]ReceivedPolicy, error) {
	where, args := f.where("policy_domain")
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT policy_domain, day, p, COUNT(*), CAST(COALESCE(SUM(messages), 0) AS BIGINT), MAX(end_at)
		FROM received_reports WHERE `+where+` GROUP BY policy_domain, day, p ORDER BY policy_domain, day, p`), args...)
	out, err := collect(rows, err, func(rows *sql.Rows) (p ReceivedPolicy, err error) {
		var day, end int64
		err = rows.Scan(&p.Domain, &day, &p.P, &p.Reports, &p.Messages, &end)
		p.Day, p.LastEnd = unix(day), unix(end)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("received policies: %w", err)
	}
	return out, nil
}

const receivedReportColumns = `id, org, email, extra_contact, report_id, begin_at, end_at, day, policy, format, version,
	generator, errors, warnings, source, imported_at, records, messages, compliant`

// ReceivedReports implements Received.
func (db *DB) ReceivedReports(ctx context.Context, f ReceivedFilter, limit int) ([]ReceivedReport, error) {
	where, args := f.where("policy_domain")
	if limit <= 0 {
		limit = 1000
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT `+receivedReportColumns+` FROM received_reports WHERE `+where+
		` ORDER BY end_at DESC, begin_at DESC, id DESC LIMIT `+strconv.Itoa(limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("received reports: %w", err)
	}
	defer rows.Close()
	var out []ReceivedReport
	for rows.Next() {
		var r ReceivedReport
		var begin, end, day, imported int64
		var policy, errs, warns string
		if err := rows.Scan(&r.ID, &r.Org, &r.Email, &r.ExtraContact, &r.ReportID, &begin, &end, &day, &policy, &r.Format,
			&r.Version, &r.Generator, &errs, &warns, &r.Source, &imported, &r.NumRecords, &r.Messages, &r.Compliant); err != nil {
			return nil, fmt.Errorf("received reports: %w", err)
		}
		r.Begin, r.End, r.Day, r.Imported = unix(begin), unix(end), unix(day), unix(imported)
		if err := unmarshalAll(&r.Policy, policy, &r.Errors, errs, &r.Warnings, warns); err != nil {
			return nil, fmt.Errorf("received report %d: %w", r.ID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// unmarshalAll decodes pairs of (destination, JSON text).
func unmarshalAll(pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1].(string) == "[]" {
			continue // an empty list reads back as nil
		}
		if err := json.Unmarshal([]byte(pairs[i+1].(string)), pairs[i]); err != nil {
			return err
		}
	}
	return nil
}

// ReceivedRecords implements Received.
func (db *DB) ReceivedRecords(ctx context.Context, id int64, fn func(ReceivedRecord) error) error {
	var one int
	err := db.r.QueryRowContext(ctx, db.q(`SELECT 1 FROM received_reports WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("received report %d: %w", id, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("received report %d: %w", id, err)
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT source_ip, count, disposition, dkim, spf, reasons, header_from,
		envelope_from, envelope_to, auth_dkim, auth_spf FROM received_records WHERE report = ? ORDER BY seq`), id)
	if err != nil {
		return fmt.Errorf("records of received report %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ReceivedRecord
		var ip, reasons, dkim, spf string
		if err := rows.Scan(&ip, &r.Count, &r.Disposition, &r.DKIM, &r.SPF, &reasons, &r.HeaderFrom, &r.EnvelopeFrom,
			&r.EnvelopeTo, &dkim, &spf); err != nil {
			return fmt.Errorf("records of received report %d: %w", id, err)
		}
		if ip != "" {
			if r.SourceIP, err = netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("records of received report %d: source_ip %q: %w", id, ip, err)
			}
		}
		if err := unmarshalAll(&r.Reasons, reasons, &r.AuthDKIM, dkim, &r.AuthSPF, spf); err != nil {
			return fmt.Errorf("records of received report %d: %w", id, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ReceivedFailures implements Received.
func (db *DB) ReceivedFailures(ctx context.Context, f ReceivedFilter, limit int) ([]ReceivedFailure, error) {
	where, args := f.where("reported_domain")
	if limit <= 0 {
		limit = 1000
	}
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT id, reported_domain, day, source_ip, feedback_type, version, user_agent,
		auth_failure, delivery_result, identity_alignment, incidents, arrival_at, original_mail_from, original_rcpt_to,
		original_envelope_id, original_from, original_subject, original_message_id, dkim_domain, dkim_identity,
		dkim_selector, spf_dns, auth_results, reported_uri, reporter, reporter_name, reporting_mta, report_message_id,
		report_subject, report_date, headers, headers_truncated, fields, warnings, source, imported_at
		FROM received_failures WHERE `+where+` ORDER BY day DESC, id DESC LIMIT `+strconv.Itoa(limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("received failures: %w", err)
	}
	defer rows.Close()
	var out []ReceivedFailure
	for rows.Next() {
		var x ReceivedFailure
		var ip, align, rcpt, spfDNS, ar, uri, fields, warns string
		var day, truncated, imported int64
		var arrival, date sql.NullInt64
		if err := rows.Scan(&x.ID, &x.ReportedDomain, &day, &ip, &x.FeedbackType, &x.Version, &x.UserAgent,
			&x.AuthFailure, &x.DeliveryResult, &align, &x.Incidents, &arrival, &x.OriginalMailFrom, &rcpt,
			&x.OriginalEnvelopeID, &x.OriginalFrom, &x.OriginalSubject, &x.OriginalMessageID, &x.DKIMDomain,
			&x.DKIMIdentity, &x.DKIMSelector, &spfDNS, &ar, &uri, &x.Reporter, &x.ReporterName, &x.ReportingMTA,
			&x.ReportMessageID, &x.ReportSubject, &date, &x.Headers, &truncated, &fields, &warns, &x.Source,
			&imported); err != nil {
			return nil, fmt.Errorf("received failures: %w", err)
		}
		x.Day, x.Imported = unix(day), unix(imported)
		x.ArrivalDate, x.ReportDate = nullUnix(arrival), nullUnix(date)
		x.HeadersTruncated = truncated != 0
		if ip != "" {
			if x.SourceIP, err = netip.ParseAddr(ip); err != nil {
				return nil, fmt.Errorf("received failure %d: source_ip %q: %w", x.ID, ip, err)
			}
		}
		if err := unmarshalAll(&x.IdentityAlignment, align, &x.OriginalRcptTo, rcpt, &x.SPFDNS, spfDNS,
			&x.AuthenticationResults, ar, &x.ReportedURI, uri, &x.Fields, fields, &x.Warnings, warns); err != nil {
			return nil, fmt.Errorf("received failure %d: %w", x.ID, err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// ReceivedTotals implements Received.
func (db *DB) ReceivedTotals(ctx context.Context) (ReceivedTotals, error) {
	var t ReceivedTotals
	err := db.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM received_reports),
		(SELECT COUNT(*) FROM received_records),
		(SELECT COUNT(*) FROM received_failures)`).Scan(&t.Reports, &t.Records, &t.Failures)
	if err != nil {
		return t, fmt.Errorf("received totals: %w", err)
	}
	return t, nil
}
