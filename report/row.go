// Package report holds what dmarcd records about the mail it evaluates and
// the reports built from it: aggregate rows and the sinks that keep them.
package report

import (
	"net/netip"
	"sync"
	"time"
)

// Override is a reason the applied disposition differs from the published
// policy (RFC 7489 Appendix C PolicyOverrideType, RFC 9990 §3).
type Override struct {
	// Type is one of "forwarded", "sampled_out", "trusted_forwarder",
	// "mailing_list", "local_policy", "policy_test_mode", "other".
	Type    string
	Comment string
}

// The override types dmarcd emits.
const (
	OverrideSampledOut       = "sampled_out"
	OverrideLocalPolicy      = "local_policy"
	OverrideTrustedForwarder = "trusted_forwarder"
	OverrideMailingList      = "mailing_list"
	OverridePolicyTestMode   = "policy_test_mode"
	OverrideOther            = "other"
)

// Published is the policy as discovered, what policy_published reports.
type Published struct {
	Domain string // where the record was found
	ADKIM  string // "r" or "s"
	ASPF   string
	P      string // "none", "quarantine", "reject"
	SP     string // "" when absent
	NP     string // "" when absent (RFC 9989)
	Pct    int    // RFC 7489
	// RI is the ri tag in seconds (RFC 7489; RFC 9989 removed it): the
	// aggregate report interval the domain asks for. 0 when not known,
	// as in rows stored before it was kept.
	RI int
	FO string
	// Testing is the RFC 9989 t tag.
	Testing bool
	// DiscoveryMethod is "psl" (RFC 7489) or "treewalk" (RFC 9989).
	DiscoveryMethod string
	// RUA lists the aggregate report destinations as published.
	RUA []string
}

// DKIMResult is one DKIM signature's result as auth_results reports it.
type DKIMResult struct {
	Domain   string
	Selector string
	Result   string
}

// SPFResult is the SPF result as auth_results reports it.
type SPFResult struct {
	Domain string
	Scope  string // "mfrom" or "helo"
	Result string
}

// Row is one evaluated message, with all that an aggregate report record
// needs. Rows with equal keys are rolled up into one record with a count.
type Row struct {
	Time    time.Time
	QueueID string // the MTA's queue id, for the log and history
	// Primary marks the row of the From domain the message's verdict is
	// about; a message with several From domains has one primary row.
	Primary      bool
	Spec         string // "rfc9989" or "rfc7489"
	Published    Published
	SourceIP     netip.Addr
	Helo         string
	HeaderFrom   string
	EnvelopeFrom string   // MAIL FROM domain; "" for the null sender
	EnvelopeTo   []string // recipient domains
	Recipients   []string // recipient addresses, for the history file
	Result       string   // DMARC result: pass, fail, none, temperror, permerror
	Policy       string   // the policy that applied: p, sp or np's value; "none" without a record
	Disposition  string   // applied: none, quarantine, reject
	Action       string   // what the MTA was told: accept, quarantine, reject, tempfail
	DKIMAligned  bool     // policy_evaluated dkim: pass when an aligned DKIM passed
	SPFAligned   bool
	Overrides    []Override
	DKIM         []DKIMResult
	SPF          []SPFResult
	// ARC is the arc= result of the message's ARC chain: from a trusted
	// upstream Authentication-Results field, else dmarcd's own check
	// (with trusted ARC sealers configured); "" when neither said. The
	// history file writes it; aggregate reports do not carry it.
	ARC string
}

// Sink receives rows from the milter. Add must not block the SMTP reply:
// implementations queue and write elsewhere.
type Sink interface {
	Add(Row)
}

// MemorySink keeps the last rows in memory, for tests and for running
// without a store. It is safe for concurrent use.
type MemorySink struct {
	// Max is how many rows are kept; older ones are dropped and counted.
	// Zero means 10,000.
	Max int

	mu      sync.Mutex
	rows    []Row
	total   int
	dropped int
}

// Add implements Sink.
func (m *MemorySink) Add(r Row) {
	m.mu.Lock()
	defer m.mu.Unlock()
	limit := m.Max
	if limit <= 0 {
		limit = 10000
	}
	if len(m.rows) >= limit {
		n := copy(m.rows, m.rows[1:])
		m.rows = m.rows[:n]
		m.dropped++
	}
	m.rows = append(m.rows, r)
	m.total++
}

// Rows returns a copy of the rows kept, oldest first.
func (m *MemorySink) Rows() []Row {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Row(nil), m.rows...)
}

// Counts returns how many rows were added in all and how many were dropped
// for the size limit.
func (m *MemorySink) Counts() (total, dropped int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total, m.dropped
}
