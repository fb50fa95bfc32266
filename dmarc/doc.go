// Package dmarc holds the DMARC logic of dmarcd, usable as a library: record
// parsing, policy discovery, organizational domains, identifier alignment and
// policy evaluation.
//
// Two specifications are implemented and one Spec value picks between them:
// RFC 9989 (DMARCbis, May 2026, the default), with its DNS tree walk, the
// np, psd and t tags, and without pct, rf, ri and the report size suffix; and
// RFC 7489, the version OpenDMARC 1.4 speaks, with the public suffix list and
// pct sampling.
//
// The package does no I/O of its own: DNS arrives through the Resolver it is
// given and randomness through Input.Rand, so it can be tested with a map and
// a seeded source.
package dmarc
