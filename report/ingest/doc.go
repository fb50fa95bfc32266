// Package ingest reads the DMARC reports other receivers send to our
// users: aggregate reports (RFC 7489 Appendix C, RFC 9990, the dmarc.org
// drafts) as XML, gzip, zip or mail, and failure reports (RFC 6591 ARF
// with the RFC 9991 fields). It parses and checks; storing, de-duplicating
// and the import command are built on it elsewhere.
//
// Walk takes a file, a directory tree, a maildir or an mbox and calls back
// with one Item per report found or refused; ParseMessage does the same
// for one message; ParseAggregate reads one XML document.
//
// # Accepting and refusing
//
// A report is accepted whenever it is meaningful, schema or not (RFC 9990
// §3.1.1 lets the evaluator "utilize some of the data"), and refused whole
// when it is not: nothing of a refused report is returned, and the refusal
// says why, with the line for XML. Every refusal is an *Error whose Kind
// is one of ErrEmpty, ErrNotWellFormed, ErrDTD, ErrInvalid, ErrLimit,
// ErrCorrupt, ErrUnsupported, ErrNotReport, ErrIO. What was tolerated is
// listed in Aggregate.Warnings or Failure.Warnings, with its line, so that
// nothing is dropped silently.
//
// Tolerated (accepted, noted where the RFC is broken):
//   - no namespace, the RFC 9990 namespace, the dmarc.org draft namespace,
//     unrelated namespace declarations (Outlook's xsd/xsi); elements in
//     any order; <version> missing, "1.0" or "2.0".
//   - Format: the namespace decides; without one, a report using an
//     element only RFC 9990 has (generator, discovery_method, testing) is
//     FormatRFC9990, else FormatRFC7489. The dmarc.org wiki's old draft
//     example has exactly the RFC 7489 elements and reads as RFC 7489.
//   - enumerated words in any case ("Pass", "None"): lower-cased, silently.
//     A word outside the RFC's list (a disposition "delivered", an SPF
//     result "hardfail") is kept, lower-cased, and noted; never mapped.
//   - an empty <reason> (no type, no comment), an empty <dkim> or <spf>
//     result: dropped and noted.
//   - a descriptive element given twice (human_result, comment,
//     extra_contact_info, generator, version): the first kept, noted.
//   - missing optional elements (envelope_to, envelope_from, sp, np,
//     adkim, aspf, fo, pct: 100 when absent); missing header_from, p,
//     policy_evaluated, identifiers or auth_results: noted.
//   - an empty org_name (the email stands in for Key); an empty email.
//   - several <dkim> and <spf> results per record (RFC 9990 allows one
//     spf, RFC 7489 several); <error> repeated (RFC 7489) or single.
//   - IPv4, IPv6 compressed or not, IPv4-mapped IPv6 (unmapped), zones
//     (dropped), brackets.
//   - unknown elements: skipped and noted; namespaced extension elements
//     and <extension>: skipped silently, as RFC 9990 §5 asks.
//   - stray text between elements (a "11" after </sp>): ignored, noted.
//   - a stray element before <feedback> when <feedback> is its first
//     child (an unclosed <xs:schema> start tag copied from the XSD): the
//     wrapper is ignored and noted. Anything after </feedback> (trailing
//     elements, text, broken XML) is ignored and noted: the report is
//     complete by then.
//   - bytes XML 1.0 cannot carry — invalid UTF-8 (a Windows-1252 byte in
//     a document declared UTF-8), C0 control characters, U+FFFE/U+FFFF —
//     are replaced by U+FFFD and noted, as report/aggregate does when
//     writing: repaired, never refused. A declared encoding other than
//     UTF-8 (ISO-8859-1, windows-1252...) is decoded; UTF-16 with a byte
//     order mark is decoded; a UTF-16 label on a document written in
//     8 bits is ignored and noted; a UTF-8 byte order mark is skipped.
//   - a gzip file with bytes after the gzip data (Mimecast appends CRLF):
//     ignored, noted when they are not white space; concatenated gzip
//     members are read as one stream.
//   - domains (policy domain, identifiers, auth result domains) are
//     lower-cased and lose a trailing dot; all text is trimmed.
//
// Refused:
//   - ErrEmpty: zero bytes or only white space.
//   - ErrNotWellFormed: broken XML, with the line (encoding/xml in Strict
//     mode: undefined entities and unquoted attributes are errors).
//   - ErrDTD: any <!DOCTYPE> or other declaration. encoding/xml never
//     expands external entities, but a report has no use for a DTD, and
//     refusing it up front rules out XXE and billion-laughs alike.
//   - ErrInvalid: no report_id; neither org_name nor email; no
//     policy_published domain; no date_range, a begin or end that is not
//     a whole number of seconds, or end before begin; a record without a
//     row, source_ip or count; a source_ip that is not an address; a count
//     that is negative or not a whole number; counts whose sum overflows;
//     any other single-valued element given twice (two <count>s, two
//     <row>s, two <report_id>s: the report is ambiguous, and choosing one
//     would be guessing).
//   - ErrLimit: Limits crossed — compressed and decompressed sizes, the
//     decompression ratio (past 1 MiB), records per report, zip entries,
//     nesting depth, message size — and fixed caps: elements nested
//     deeper than 64, more than 20,000 XML tokens in one first-level
//     element (a record, report_metadata...), 1,000 MIME parts per
//     multipart. Zip members are checked on their declared sizes before
//     reading and on the bytes produced while reading.
//   - ErrCorrupt: bad gzip or zip data, a CRC mismatch (the whole stream
//     is read so that checksums are verified even when the XML ended
//     early), broken base64, content named .gz or .zip that is neither.
//   - ErrNotReport: a message with no report attachment and no ARF part;
//     a multipart/report without a message/feedback-report part — Exim's
//     plain-text "DMARC Forensic Report" notice is one, and is refused
//     with that reason rather than skipped, so that an import can count
//     it; an ARF report whose Feedback-Type is not auth-failure; XML whose
//     root is not <feedback>; an attachment named or typed as XML that
//     holds something else; a file of unknown content.
//
// Not kept: human_result (report.DKIMResult and report.SPFResult have no
// field for it), extension data, the reported message's body.
//
// # Containers
//
// Inputs are recognised by content, names being only a hint: gzip by its
// magic number, zip by its signature (only members named *.xml are read,
// each a report of its own, "file.zip:member.xml"), mbox by its first
// From_ line (mboxo and mboxrd, LF or CRLF; ">From " unescaped), a
// message by a header field on its first line. In a message every leaf
// MIME part is sniffed the same way, whatever its Content-Type says
// (application/octet-stream with a .gz name included); an XML part is
// taken when it starts with <?xml or <feedback, or when its name or type
// says XML. message/rfc822 parts are read as forwarded messages, except
// the reported message inside an ARF report, of which only the header
// section is kept (and never searched for reports). MaxDepth bounds all
// nesting: mbox, message, multipart, attached message, zip, gzip.
//
// # Idempotence
//
// Aggregate.Key and Failure.Key identify a report for the store: the same
// report received twice (re-sent, or by two routes) has the same key. The
// parser does not de-duplicate.
package ingest
