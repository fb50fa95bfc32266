// Package delivery turns a report file into mail and hands it to an SMTP
// relay: Compose writes the message (RFC 5322 and MIME, in the form RFC
// 9990 §3.5.2 and RFC 7489 §7.2.1.1 give aggregate reports), Signer adds
// a DKIM signature (RFC 6376, RSA or Ed25519), Relay.Send submits it with
// go-smtp and tells, recipient by recipient, what was delivered, what may
// be retried and what will never go.
//
// A report can be larger than is comfortable to hold twice in memory, so
// the scheduler composes it to a file, which signing reads twice and
// sending streams:
//
//	f, _ := os.CreateTemp(spool, "report-*.eml")
//	defer os.Remove(f.Name())
//	err := delivery.Compose(f, msg)                // the gzip file streamed in
//	f.Seek(0, io.SeekStart)
//	sig, err := delivery.Signatures(f, rsaSigner, edSigner)
//	f.Seek(0, io.SeekStart)
//	res, err := relay.Send(ctx, bounceAddr, msg.To, io.MultiReader(strings.NewReader(sig), f))
//	// res.Accepted: done; res.Retry(): same file, same Message-ID, later;
//	// the other res.Rejected: drop, and log.
//
// The composed size (the file's) is what a destination's "!10m" limit is
// compared with.
//
// # Loops
//
// Report mail says Auto-Submitted: auto-generated (RFC 3834), and its
// Subject and attachment have the RFC 9990 forms (ParseSubject reads the
// Subject back). No private X- field is added: it would identify nothing
// that anyone could not forge. What keeps dmarcd from feeding on its own
// mail:
//
//   - Failure reports (RFC 9991): never send one about a message whose
//     Auto-Submitted is anything but "no" (IsAutoSubmitted; RFC 3834 §2
//     forbids answering those automatically), whose MAIL FROM is the null
//     reverse-path (a bounce), whose Content-Type is multipart/report (RFC
//     6522: a DSN, an ARF or another report), or whose Subject parses as an
//     aggregate report. Together with the rate limit RFC 9991 recommends,
//     that breaks any loop between two reporters, forged or not.
//   - Aggregate rows: reports other people send us are mail like any other
//     and must be counted. Our own outgoing reports are not received mail
//     and should not be counted: the milter skips them because they come
//     from the scheduler through the local relay, i.e. from a client in
//     IgnoreHosts (127.0.0.1 by default, as in OpenDMARC) or an
//     authenticated client. Recognising them by a header alone would let
//     any spoofer hide from the aggregate reports of the domain it spoofs;
//     if the milter must recognise them on a relay where the connection
//     says nothing, it should require Auto-Submitted: auto-generated, a
//     Subject ParseSubject accepts with our Submitter, and a DKIM pass for
//     our signing domain in Authentication-Results from a trusted
//     authserv-id.
//   - Bounces of report mail come to the envelope sender given to Send,
//     with the null reverse-path; they are not reported on (previous
//     point) and must not be answered.
package delivery
