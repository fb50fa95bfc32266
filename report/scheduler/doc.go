// Package scheduler makes dmarcd's aggregate reports out of the rows in
// the report store and mails them: it decides the periods, creates each
// report once, builds the XML, composes, signs and sends the mail, retries
// what failed and expires old data.
//
// # Periods
//
// Each policy domain gets periods of one length, its interval, aligned on
// UTC boundaries (RFC 7489 §7.2): 1, 2, 3, 4, 6, 8 or 12 hours, a day, or a
// week beginning on Monday, all of which divide the next longer one. A
// domain evaluated under RFC 7489 gets the longest of those not longer
// than the ri of its record (as the milter saw it; for data stored before
// rows kept ri, read again at planning time, once per run); a domain evaluated
// under RFC 9989, which removed ri, gets a day, as RFC 9990 expects. The
// interval is then bounded by the operator's floor and ceiling (hourly,
// daily or weekly; a floor of "never" sends nothing). When a domain's
// interval changes, the first period after its last report begins where
// that report ended and ends on a boundary of the new interval, so
// periods never overlap and never leave a gap.
//
// A period's report is made CloseDelay after the period ends, when the
// rows still queued in the Writers of every node have reached the store.
// Rows for a reported period arriving later are kept but never reported
// (the store's rule). Planning starts from the store's unreported hours,
// so a scheduler that was down for several periods makes each missing
// report, oldest first, on its next run; a period that ended more than
// MaxBacklog ago is recorded as a skipped report instead of being mailed
// weeks late.
//
// # Exactly once
//
// Only the holder of the store's "sender" lease plans and sends: with
// PostgreSQL one node of all (a session advisory lock, released by the
// database when the holder's connection dies), with SQLite one process of
// the host (a flock). The others stand by and try again at every poll.
// Reports are idempotent besides: store.CreateReport returns the existing
// report of a domain and period, its ID is store.ReportID of the two (the
// same on every node and after every crash), its records are frozen at
// creation, and the mail built from it (XML, gzip, MIME, Message-ID, Date)
// is byte for byte the same at every attempt. A crash between sending
// and recording the attempt can send one report twice, with the same
// Report-ID and Message-ID, never two different reports for a period.
//
// # Sending
//
// A report has one delivery per destination, which is the unit of the
// outbound queue kept in the store: it stays pending until it is
// delivered, fails permanently or is given up. Each run sends the due
// deliveries; those to one destination one after another, oldest first,
// different destinations Concurrency at a time.
//
//   - Spreading: a report's first attempt waits, after CloseDelay, a
//     fixed offset within Spread (capped at the interval): a hash of the
//     domain and period. The reports of thousands of domains for the same
//     day then leave over hours, not in one burst at midnight.
//   - Rate limits: at most Global deliveries in any window of its length,
//     and PerDestination to one destination domain. Counts come from the
//     store's record of attempts, so they hold across runs, restarts and
//     a lease moving to another node. A delivery held back stays due.
//   - Retries: a temporary failure is tried again after RetryBackoff,
//     doubled at each further failure up to RetryBackoffMax. A
//     destination that keeps failing temporarily is given up after
//     RetryMaxAge; failures of our relay (connecting, TLS, AUTH, MAIL
//     FROM refused) are retried without end, as they are ours to fix.
//     A permanent refusal of the destination fails the delivery; the
//     store suppresses a destination after several in a row.
//   - Size: a report over the destination's "!size" limit (RFC 7489) or
//     our MaxSize is not sent there (RFC 7489 §7.2.1); when no
//     destination of the report can take it, RFC 7489 destinations get
//     the short error report of §7.2.2 instead.
//   - Suppression: destinations matching Suppress (OpenDMARC's
//     NoReportsList) or added to the store's list get nothing.
//
// # Destinations
//
// An rua outside the policy domain's organizational domain receives
// reports only when <policy-domain>._report._dmarc.<host> authorizes it
// (RFC 7489 §7.1, RFC 9990); a record there with an rua of its own on the
// same host replaces the destination. Each destination is checked once per
// run, whatever number of periods share it, Concurrency at a time, and
// never per message. A check that fails for DNS reasons postpones the
// domain's reports to the next run (RetryMaxAge at most); an unauthorized
// destination is left out and the others are served.
//
// # Formats
//
// Reports are RFC 7489 XML by default, RFC 9990 for the destinations a
// FormatRule names. The XML is streamed from the store's cursor through
// gzip into a spool file, never held in memory; the mail is composed into
// another spool file, DKIM-signed (RSA and Ed25519 signers) from it, and
// streamed to the relay.
//
// # Loops
//
// Report mail must not become report rows itself: it goes out through the
// local relay (localhost:25 by default), and mail from 127.0.0.1 and ::1
// is not evaluated by the milter (ignore.hosts). See report/delivery for
// why a header alone must not exempt mail.
package scheduler
