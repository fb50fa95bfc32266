// Package history writes OpenDMARC's HistoryFile: the per-message text
// records that OpenDMARC 1.4.2 appends and that opendmarc-import(8) loads
// into the MySQL database behind opendmarc-reports(8) and the dashboards
// people have built on it. dmarcd writes the same file, byte for byte in the
// same grammar, so that such a pipeline keeps working during a migration.
//
// # The format
//
// A record is a run of lines "key value\n", with no blank line between
// records: opendmarc-import starts a new record at each "job" line and
// ignores empty lines. One record, as OpenDMARC 1.4.2 writes it (opendmarc.c,
// mlfi_eom, the dmarcf_dstring_printf(dfc->mctx_histbuf, ...) calls) and as
// Format writes it:
//
//	job 4Zx1Lq0fz3z9t1
//	reporter mx1.example.net
//	received 1767225600
//	ipaddr 192.0.2.25
//	from example.com
//	mfrom bounce.example.com
//	dkim example.com sel1 0
//	spf 0
//	pdomain example.com
//	policy 15
//	rua mailto:dmarc@example.com
//	pct 100
//	adkim 114
//	aspf 114
//	p 114
//	sp 0
//	align_dkim 4
//	align_spf 4
//	arc 7
//	arc_policy 2 json:[]
//	action 2
//
// The lines, in order:
//
//	job        the MTA's queue id ({i}); "(unknown-jobid)" when there is none
//	reporter   the MTA's name ({j}), else the host name
//	received   Unix time in seconds
//	ipaddr     the SMTP client address, inet_ntop form; 127.0.0.1 when unknown
//	from       the RFC5322.From domain
//	mfrom      the MAIL FROM domain; empty for the null sender (the line is
//	           then "mfrom " with a trailing space, exactly as OpenDMARC writes it)
//	dkim       one line per DKIM result: "dkim <d> <s or -> <ARES code>"
//	spf        the SPF result, an ARES code; -1 when there was none
//	pdomain    the domain the policy record came from, else the From domain
//	policy     a DMARC_POLICY_* code: the verdict and requested policy in one
//	rua        one line per aggregate report URI, or "rua -" when there is none
//	pct        the record's pct; 0 without a record
//	adkim      the character code of the adkim tag: 114 'r', 115 's'; 0 without a record
//	aspf       likewise
//	p          the character code of p: 110 'n', 113 'q', 114 'r'; 0 without a record
//	sp         likewise for sp; 0 when the record has no sp
//	align_dkim DMARC_POLICY_DKIM_ALIGNMENT_*: 4 pass, 5 fail; 0 without a record
//	align_spf  DMARC_POLICY_SPF_ALIGNMENT_*: 4 pass, 5 fail; 0 without a record
//	arc        an ARES code: the trusted arc= result; 7 (fail) when there is none
//	arc_policy DMARC_ARC_POLICY_RESULT_* (0 pass, 2 fail), then " json:" and a
//	           JSON array of the ARC-Seals: { "i": 1, "d":"…", "s":"…", "ip":"…" }
//	action     a DMARC_RESULT_* code: what the filter did
//
// OpenDMARC writes the spf and dkim lines while it walks the trusted
// Authentication-Results fields, so their place among the lines after mfrom
// follows the message; Format always writes the dkim lines first, then spf,
// which is OpenDMARC's order whenever SPF was not a pass it read from a
// header. opendmarc-import does not depend on the order of anything but job.
//
// # Codes
//
// ARES codes (opendmarc/opendmarc-ar.h ARES_RESULT_*), for spf, dkim and arc:
//
//	pass 0, softfail 2, neutral 3, temperror 4, permerror 5, none 6,
//	fail 7, policy 8, nxdomain 9, signed 10, unknown 11, discard 12
//
// A result keyword outside that table is written as 11 (unknown); see
// [ResultCode] for why that differs from OpenDMARC.
//
// DMARC_POLICY_* (libopendmarc/dmarc.h), for policy ([PolicyCode]):
//
//	14 absent     no usable policy record: result none, temperror, permerror
//	15 pass       DMARC pass
//	16 reject     DMARC fail, requested policy reject
//	17 quarantine DMARC fail, requested policy quarantine
//	18 none       DMARC fail, requested policy none
//
// The requested policy is the record's p or sp before pct sampling; pct and
// t=y change only the action. DMARC_RESULT_* (opendmarc/opendmarc.h), for
// action ([Action]): 0 reject, 1 discard, 2 accept, 3 tempfail, 4 quarantine.
// OpenDMARC writes 4 only when it held the message (HoldQuarantinedMessages)
// and 0 only when it rejected it: a failure that was let through is 2.
//
// # What opendmarc-import needs
//
// opendmarc-import (reports/opendmarc-import.in) splits each line on the
// first two spaces into key, value and the rest, and inserts one row into
// messages per record. It drops a record silently unless reporter, from,
// mfrom, pdomain and ipaddr are present and not "-"; MySQL refuses it unless
// received, job, policy, action, spf, align_dkim, align_spf, arc and
// arc_policy are present (NOT NULL columns), and the requests update fails
// without adkim, aspf, p, sp and pct. rua and dkim are optional. It warns
// about any key it does not know, so Format writes no key OpenDMARC 1.4.2
// does not (later OpenDMARC branches add spf_scope and fo; there never was a
// recipient key). The JSON after "arc_policy N json:" must be valid: the
// importer dies on a decode error. The table messages has a unique key on
// (reporter, date, job): two records for one message in the same second
// import as one row and an error, so write one record per message.
//
// Values are written as they are, except that bytes a line cannot hold
// (controls, space, DEL) are percent-encoded, so that no value can split a
// line or start a forged record.
package history
