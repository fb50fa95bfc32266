// Package failure makes dmarcd's DMARC failure reports (RFC 9991, the
// Abuse Reporting Format of RFC 5965 with the authentication failure
// fields of RFC 6591; RFC 7489 §7.3 where the spec setting asks for it).
//
// The milter decides, per message and From domain, whether the policy
// record asks for a report (Wanted, the fo tag), and hands an Incident to
// a Queue (package report/failure/outbound) without waiting. The Queue redacts it (local parts of addresses,
// chosen header fields), removes duplicates and keeps it in the store's
// failure queue, so that a restart loses nothing. A Sender, holding the
// store's "failure-sender" lease so that one node sends, drains that
// queue: it verifies external destinations (RFC 7489 §7.1, as for rua),
// applies the rate limits per policy domain and per destination domain,
// composes the report (Compose), DKIM-signs it and hands it to the relay
// aggregate reports go through.
//
// # Few reports, on purpose
//
// Failure reports carry personal data (addresses, subjects, bodies) to a
// third party; RFC 9991 and privacy law ask receivers to send few, and
// redacted. So: nothing is sent unless failure reports are enabled; local
// parts are redacted by default; the whole message is attached only when
// configured, and within a size cap; what the rate limits hold back is
// counted and logged, then dropped, not queued for later (a report days
// late helps nobody). Once a report is finished (sent, failed, dropped)
// its copy of the message is erased from the store.
//
// # Loops
//
// No report is made about a message with the null MAIL FROM (a bounce),
// an Auto-Submitted value other than "no", a multipart/report Content-Type
// (a DSN, an ARF report) or an aggregate report's Subject (Exempt). See
// report/delivery for the rest of the loop rules.
package failure
