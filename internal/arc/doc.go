// Package arc validates the Authenticated Received Chain of a message (ARC,
// RFC 8617): the ARC sets that forwarders (mailing lists, forwarding
// services, security gateways) add so that a later receiver can see what
// they saw before they changed the message.
//
// dmarcd uses it for the trusted_forwarder override: when DMARC fails but
// the message carries a valid chain sealed by a forwarder the administrator
// trusts, whose ARC-Authentication-Results show an aligned SPF or DKIM pass,
// the failure is not enforced.
//
// # What is verified
//
// Verify (and Verifier, its streaming form) follows RFC 8617 §5.2:
//
//  1. The ARC header fields are collected and grouped by instance (i=).
//     None: the result is "none". A field whose instance does not parse, an
//     instance above 50, or more ARC fields than 50 sets can hold: "fail".
//  2. If the newest ARC-Seal says cv=fail, the chain is "fail".
//  3. Structure: every set 1..N exactly once with exactly one
//     ARC-Authentication-Results (AAR, starting "i=N;"),
//     ARC-Message-Signature (AMS) and ARC-Seal (AS), their tag-lists valid
//     (RFC 6376 §3.2: no tag twice, no ";;"); cv=none on set 1 and cv=pass
//     on the others; every AS and the newest AMS well-formed (required
//     tags, a=rsa-sha256 or ed25519-sha256, valid d= and s=, base64 b= and
//     bh=, c=, l= and t= syntax, no ARC-Seal in an AMS's h=, no h= in an
//     AS). Any breach: "fail". An older AMS that is not well-formed only
//     lowers oldest-pass, as one that does not verify does.
//  4. The newest AMS is verified as a DKIM signature (RFC 6376 §3.7): its
//     body hash over the canonicalized body (c=, l=), then its signature
//     over the fields named in h=, selected bottom-up, and itself with b=
//     emptied. Failure: "fail".
//  5. Every AS, newest first, is verified over the ARC sets 1..i in order
//     AAR, AMS, AS, relaxed canonicalization, its own b= emptied. Failure:
//     "fail".
//  6. Otherwise "pass", with oldest-pass (RFC 8617 §5.2 step 5): the older
//     AMSs are verified from N-1 down, and OldestPass is the lowest instance
//     of the unbroken run of passing ones that ends at N, or 0 when all
//     pass.
//
// Keys are the DKIM keys at <s>._domainkey.<d> (RFC 6376 §3.6.1): k=rsa or
// k=ed25519 (RFC 8463), RSA between 1024 (RFC 8301) and 8192 bits, h= and
// s= restrictions honoured, an empty p= is a revoked key. A key that is
// absent (NXDOMAIN, no TXT record), revoked or unusable fails the signature
// that needs it, and so the chain. A DNS failure that may pass (SERVFAIL,
// timeout, an error the resolver did not classify) never makes the chain
// fail: Verify returns an error wrapping dmarc.ErrTemporary, unless another
// check fails the chain for good.
//
// Not verified: t= is not compared with the clock (ARC sets have no
// expiry), a key's t=y (testing) flag is ignored, the AAR's content is
// parsed for the caller but its meaning is not judged (that is the
// caller's trust decision), and d= or s= with non-ASCII characters (RFC
// 8616) are refused.
//
// # What the caller passes
//
// Header fields in the order they appear in the message, top first, every
// field of the header (not only the ARC ones: the AMS signs others). Each
// Field is a name and what followed its colon; Raw, when set, is the whole
// field as received and takes precedence. Relaxed canonicalization, which
// nearly every sealer uses, makes folding and whitespace irrelevant; simple
// header canonicalization needs the exact bytes, so the value must keep its
// leading whitespace. Milters get the value without the one space the MTA
// removes after the colon unless SMFIP_HDR_LEADSPC was negotiated:
// MilterField puts it back. Line breaks inside a value may be LF (Postfix
// sends LF) or CRLF; they are hashed as CRLF.
//
// The body is everything after the blank line that ends the header, with
// CRLF line endings, exactly as the MTA hands it to a milter in body chunks
// (Postfix sends each line with CRLF; a bare LF is read as CRLF). Feed it
// to a Verifier chunk by chunk as it arrives; nothing is buffered.
//
// # Limits
//
// At most 50 sets (RFC 8617 §4.2.1), 150 ARC fields, 64 KiB per ARC field
// and 512 KiB for all of them, 256 names in an AMS's h=, RSA keys of 1024
// to 8192 bits, 100 key lookups per message. Beyond 4 distinct body hashes
// (c= and l= combinations) or 8 MiB of header octets hashed for them, older
// AMSs are left unverified, which only lowers oldest-pass. No input can
// make it panic; FuzzVerify checks that. Cost is linear in the size of the
// message: the body is canonicalized once per canonicalization in use, at
// about 200 MB/s.
package arc
