// Package aggregate writes DMARC aggregate reports: the XML of RFC 7489
// Appendix C or of RFC 9990, streamed record by record so that memory does
// not grow with the report, and what sending one needs: the attachment's
// file name, gzip, and the size-limit rules.
//
// Every report validates against its format's schema: RFC 7489 Appendix C
// (with the two mechanical fixes the reference README describes: no target
// namespace, as in real reports, and the IP pattern on one line) or the RFC
// 9990 XSD. Where the milter recorded a value a format has no word for, the
// nearest word is written and, for override reasons, the original one is
// kept at the head of the comment:
//
//	                     RFC 7489                          RFC 9990
//	root                 <feedback>, no namespace          xmlns urn:ietf:params:xml:ns:dmarc-2.0
//	version              1.0 (required by the schema)      1.0 ("MUST have the value 1.0")
//	generator            left out                          written
//	error                one element per error             one element, errors joined by "; "
//	policy_published     domain adkim aspf p sp pct fo     domain discovery_method p sp np fo
//	                     (sp, pct, fo required)            adkim aspf testing (no pct)
//	defaults             sp=p, adkim=aspf=r, fo=0          the same, and np=sp, testing=n
//	t=y (testing)        pct 0 (RFC 9989: t=y stands       testing y
//	                     for pct=0)
//	disposition pass     none                              pass
//	reason               policy_test_mode -> sampled_out   forwarded, sampled_out -> other
//	                     unknown -> other                  unknown -> other
//	source_ip (IPv6)     eight groups (the schema's        RFC 5952 (2001:db8::1)
//	                     pattern): 2001:db8:0:0:0:0:0:1
//	envelope_from        always, empty for null sender     the same
//	envelope_to          only when the record has exactly one recipient domain
//	dkim selector        left out when unknown             always (required)
//	spf                  every result, helo and mfrom;     at most one, scope mfrom: a helo
//	                     a "none" result when there is     result only for the null sender
//	                     none (at least one required)      (RFC 7208 §2.4), else none
//	spf result policy    neutral                           policy
//	unknown results      DKIM and SPF: neutral; RFC 4408's error, unknown, hardfail:
//	                     temperror, permerror, fail
//
// IPv4-mapped IPv6 addresses are written as the IPv4 address, zones are
// dropped, and at most 100 DKIM results are written per record, in the
// priority order of RFC 9990. Text is escaped, and what XML 1.0 cannot
// carry (invalid UTF-8, control characters) becomes U+FFFD, so the report
// is well-formed whatever the names from DNS and headers hold.
package aggregate
