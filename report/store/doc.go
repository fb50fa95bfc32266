// Package store keeps what dmarcd's aggregate reports are made of, in an
// embedded SQLite database (the default: pure Go, nothing to install) or in
// PostgreSQL (several MX hosts sharing one database).
//
// # Flow
//
// The milter hands each evaluated message to a Writer (a report.Sink).
// Add queues it without ever waiting on the database; a goroutine rolls the
// queued rows up in memory by hour and Key and writes them in one
// transaction (group commit) every FlushRows rows or FlushInterval. The
// scheduler (built on the Store interface) asks Unreported which domains
// have hours not yet reported, creates each report with CreateReport
// (which freezes the report's records and queues one delivery per rua
// destination), streams the records with ReportRecords to build the XML,
// takes deliveries from Due and records each attempt with RecordAttempt.
// One node sends at a time: the holder of the "sender" lease (TryLease).
//
// # Roll-up
//
// Storage grows with distinct keys, not with messages. A Key is all that an
// aggregate report record says except its count: policy domain, source IP,
// header_from, envelope_from, envelope_to, disposition, policy_evaluated
// dkim and spf, override reasons with their comments, and the auth_results
// DKIM (domain, selector, result) and SPF (domain, scope, result) lists.
// KeyOf canonicalizes it (domains in lower case without the final dot,
// IPv4-mapped addresses as IPv4, lists sorted and without duplicates, text
// valid UTF-8 without NUL), so equal messages hash equal. Counts are kept
// per UTC hour, so any report period of whole hours (RFC 7489 and 9990
// periods are hours to days) adds up exactly. The published policy is kept
// per domain and hour as last seen; the policy of a period is the one seen
// last within it. A node writes an hour's policy when it is new or differs
// from the one that node wrote last (knownPolicies), not with every batch:
// with several nodes, the policy kept is the last one a node saw change.
// Rows without a published policy (no DMARC record, or a
// DNS error) have no report to go to and are not stored.
//
// # Schema
//
// Versioned migrations (migrate.go), applied at Open in one transaction
// per version, recorded in schema_version; several nodes opening one
// PostgreSQL database at once apply each version once (advisory lock). A
// database newer than the program is refused (ErrSchemaTooNew). Tables:
//
//	agg_keys       key_hash PK, the key's columns (lists as JSON arrays), first_hour, last_hour
//	agg_counts     (policy_domain, hour, key_hash) PK, count
//	agg_hours      (policy_domain, hour) PK, messages (0: no longer written), policy (JSON),
//	               policy_seen, has_rua; written when the hour's policy is new or changed
//	reports        id, report_id UNIQUE, (policy_domain, begin_at, end_at) UNIQUE, policy,
//	               state, records, messages, attempts, next_attempt_at, last_error, times
//	report_records (report, key_hash) PK, count: a report's records, frozen at creation
//	deliveries     id, (report, destination) UNIQUE, dest_domain, max_size, state, attempts,
//	               next_attempt_at, last_attempt_at, last_error, sent_at
//	destinations   destination PK, permanent_failures in a row, last failure and success
//	suppressions   pattern PK, reason, auto, created_at
//
// and, for the reports other receivers send us (version 4, see Received):
//
//	received_reports   id, key_hash UNIQUE (SHA-256 of org and report_id), reporter, org, email,
//	                   report_id, policy_domain, begin_at, end_at, day, policy (JSON), p, format,
//	                   version, generator, errors, warnings, records, messages, compliant, source,
//	                   imported_at; index (policy_domain, day)
//	received_records   (report, seq) PK, policy_domain, day, source_ip, count, disposition, dkim,
//	                   spf, reasons, header_from, envelope_from, envelope_to, auth_dkim, auth_spf
//	                   (JSON), and 0/1 flags compliant, dkim_aligned, spf_aligned, dkim_pass,
//	                   spf_pass, authenticated; index (policy_domain, day)
//	received_failures  id, key_hash UNIQUE, reported_domain, day, the ARF fields, the reported
//	                   message's capped header section, source, imported_at
//
// Times are Unix seconds; a day is the Unix second its UTC day starts at.
//
// # Received reports
//
// Received (implemented by *DB) keeps the aggregate and failure reports
// that report/received imports: each report in one transaction with all
// its records, once per key (ON CONFLICT DO NOTHING on key_hash, so two
// importers racing store it once), and answers the summaries' queries
// with sums over received_records per domain, day, source IP or reporter.
// An aggregate report counts on the UTC day holding the middle of its
// date range. Expire does not touch these tables.
//
// # Reports are idempotent
//
// A report's ID is ReportID(reporter, domain, period): the same on every
// node, after every crash and retry. CreateReport returns the existing
// report when there is one, refuses a period overlapping another report of
// the domain (ErrOverlap), and copies the period's records into
// report_records, so a report built again after a crash is byte for byte
// the same report. Rows arriving for an hour a report already covers are
// late: kept, never reported. A report is pending while a delivery is,
// then sent, failed (no delivery succeeded) or skipped (no destination, or
// all suppressed). A destination that fails permanently SuppressAfter
// times in a row is added to the suppression list.
//
// # Durability
//
// Committed rows are never counted twice: a flush is one transaction, and
// counts only ever add. What a failure can lose:
//
//   - dmarcd killed (kill -9, OOM, panic): the Writer's queue and the
//     write in progress, WriterStats.Queued + WriterStats.Pending. Under a
//     steady load that is the rows of the last FlushInterval (1 s) or
//     FlushRows (1,000), whichever is fewer, plus those that arrived during
//     one write (milliseconds); the hard bound is 2 × QueueSize (a full
//     queue being written while another fills). Every committed row
//     survives, on both drivers. The database opens clean: SQLite rolls
//     back the unfinished transaction from its WAL. TestKillDuringLoad
//     checks all of it.
//   - Power loss or kernel crash, SQLite with synchronous=NORMAL (the
//     default): the above, plus the transactions committed since the last
//     checkpoint, which is what syncs the WAL: at most CheckpointInterval
//     (30 s) old, or 1,000 WAL pages (about 4 MiB), whichever comes first.
//     The database stays consistent. Options.Synchronous = "FULL" syncs at
//     every commit (one fsync per flush) and loses only the queue.
//   - Power loss, PostgreSQL: only the queue (commits are durable with the
//     server's default synchronous_commit=on).
//   - SIGTERM: nothing; Writer.Close writes all that is queued.
//
// # Several nodes
//
// With PostgreSQL, each node runs its own Writer. Counts are upserted
// (count = count + EXCLUDED.count) in key order, so that concurrent
// transactions sum exactly and never deadlock. Report creation takes a
// per-domain transaction lock, and enqueueing a failure report a lock per
// deduplication key (in key order), so that two nodes seeing the same
// failure at once queue it once. The sender lease is a session advisory lock
// on a connection of its own: see advisoryLease for why it beats a lease
// row. Connect directly or through a pooler in session mode.
//
// # Expiry
//
// Expire (like opendmarc-expire) deletes the hourly counts older than a
// date, finished reports that ended by then, and the keys nothing uses any
// more; pending reports stay until they are delivered or given up.
package store
