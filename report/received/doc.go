// Package received is what dmarcd makes of the DMARC reports other
// receivers send to its users: importing them into the store (Importer,
// behind `dmarcd import`), and summarising them per domain (Service,
// behind `dmarcd summary` and the dashboard).
//
// # Importing
//
// Importer reads files, directory trees, maildirs and mboxes with
// report/ingest (aggregate reports as XML, gzip, zip or mail; RFC 6591
// failure reports) and stores each report whole, in one transaction, with
// store.Received. A report already stored (same reporting organisation and
// report_id, ingest's Key) is counted as a duplicate and stored once; a
// report the parser refuses is counted as rejected, grouped by the class of
// the refusal (ingest's Err variables), with its source and line, and
// nothing of it is stored. No network access happens during an import:
// PTR names are looked up later, when a summary asks for them.
//
// # The numbers
//
// Every number is a count of messages: the sum of the counts of the
// records concerned, as the reporters wrote them. A report's messages
// count on the UTC day holding the middle of its date range. Counts
// (store.ReceivedCounts) are:
//
//   - Messages: all of them.
//   - Compliant: DMARC pass as the reporter evaluated it, policy_evaluated
//     dkim = pass or spf = pass (an identifier aligned with the From
//     domain authenticated).
//   - DKIMAligned, SPFAligned: policy_evaluated dkim = pass, spf = pass.
//   - DKIMPass, SPFPass: auth_results holds a DKIM (SPF) result "pass",
//     for any domain, aligned or not: raw authentication.
//   - Authenticated: DKIMPass or SPFPass or Compliant.
//   - None, Quarantine, Reject: the disposition the receiver applied
//     (None includes RFC 9990's "pass"); OtherDisposition counts words
//     outside the RFCs.
//
// Rates (Rates) divide them: Compliance = Compliant / Messages;
// DKIMPass, SPFPass, DKIMAligned, SPFAligned likewise over Messages;
// Aligned = Compliant / Authenticated, the share of the mail that
// authenticated at all whose authentication was also aligned (a low value
// means senders, often third-party services, sign or send with their own
// domain rather than yours). A rate over zero messages is 0.
//
// # Queries
//
// Service answers per domain (or all domains with Domain "") over a Range
// of UTC days: Domains, Series (one Day per UTC day, days without data
// zero), Sources (top source IPs), FailingSources (the sources with the
// most non-compliant messages: what to fix), Reporters, Reports, Records,
// Failures, Rollout and Summary (all of it at once). Every type is plain
// data with JSON tags, for the dashboard to serve as it is.
//
// # PTR names
//
// Names resolves source IPs to their PTR names at query time, never during
// an import: through a Resolver (internal/dnscache's, which caches DNS
// answers), with an in-process bounded cache of IP to name with a TTL, a
// timeout per lookup and a bound on lookups in flight. A lookup that fails
// or times out leaves the name empty; the summary does not wait longer
// than the timeout for it.
//
// # Rollout hint
//
// Rollout reads a domain's published policy (p, as the reporters saw it)
// day by day, and says what common DMARC rollout guidance (RFC 9989's
// advice to domain owners, M3AAWG's) would suggest next: stay at p=none
// until about 90 days of reports show nearly all mail compliant, then
// p=quarantine, then p=reject. The thresholds are the Rollout* constants.
package received
