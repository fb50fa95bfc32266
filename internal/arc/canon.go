package arc

import (
	"hash"
	"strings"
)

// canon is a canonicalization algorithm (RFC 6376 §3.4).
type canon uint8

const (
	simple canon = iota
	relaxed
)

func (c canon) String() string {
	if c == relaxed {
		return "relaxed"
	}
	return "simple"
}

// parseCanon reads a c= value, "header/body" or "header" alone, which
// leaves the body simple (RFC 6376 §3.5). Absent, ARC's default is
// relaxed/relaxed: unlike DKIM, ARC signers are only ever seen using
// relaxed, and both OpenARC and dkimpy read a missing c= that way.
func parseCanon(v string, present bool) (header, body canon, ok bool) {
	if !present {
		return relaxed, relaxed, true
	}
	h, b, two := strings.Cut(v, "/")
	one := func(s string) (canon, bool) {
		switch s {
		case "simple":
			return simple, true
		case "relaxed":
			return relaxed, true
		}
		return 0, false
	}
	header, ok = one(h)
	if !ok {
		return 0, 0, false
	}
	if !two {
		return header, simple, true
	}
	body, ok = one(b)
	return header, body, ok
}

// canonHeader canonicalizes one header field given as its name and what
// follows the colon, and appends it, with a final CRLF, to dst.
//
// simple (RFC 6376 §3.4.1) keeps the field as it was, line breaks made
// CRLF. relaxed (§3.4.2) lowercases the name, unfolds, turns runs of
// whitespace into one space and drops the whitespace at the ends of the
// value and around the colon.
func canonHeader(dst []byte, c canon, name, value string) []byte {
	if c == simple {
		dst = append(dst, name...)
		dst = append(dst, ':')
		dst = appendCRLF(dst, value)
		return append(dst, '\r', '\n')
	}
	name = strings.TrimRight(name, " \t")
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, ':')
	space := false
	wrote := false
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\r', '\n':
			// Unfolding: a line break inside a field is always a fold.
		case ' ', '\t':
			space = true
		default:
			if space && wrote {
				dst = append(dst, ' ')
			}
			space = false
			wrote = true
			dst = append(dst, c)
		}
	}
	return append(dst, '\r', '\n')
}

// appendCRLF appends s with every bare LF written as CRLF: the MTA hands
// milters folded fields with LF line breaks, but the signer hashed CRLF.
func appendCRLF(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			dst = append(dst, '\r')
		}
		dst = append(dst, s[i])
	}
	return dst
}

// bodyCanon canonicalizes a message body as it streams (RFC 6376 §3.4.3
// and §3.4.4) and feeds the result to its hashes. Lines end in CRLF; a bare
// LF is taken for CRLF, as Postfix would have stored it, and a bare CR is
// an ordinary character.
type bodyCanon struct {
	c      canon
	hashes []*bodyHash

	cr      bool  // a CR was the last byte seen, and is held
	crlfs   int   // line breaks held back: they may end the body
	wsp     bool  // relaxed: whitespace held back on the current line
	content bool  // relaxed: a non-empty line has been written
	length  int64 // canonical octets produced so far
	out     []byte
}

// bodyHash is one body hash being computed: the hash of the first limit
// octets of the canonical body, or of all of it when limit is negative.
type bodyHash struct {
	h     hash.Hash
	limit int64
	done  []byte // the digest once the body has ended
	total int64  // the length of the whole canonical body
}

// special marks the bytes the canonicalizations look at; runs of other
// bytes are copied as they are.
var special = [2][256]bool{
	simple:  {'\r': true, '\n': true},
	relaxed: {'\r': true, '\n': true, ' ': true, '\t': true},
}

func (b *bodyCanon) Write(p []byte) (int, error) {
	sp := &special[b.c]
	for i := 0; i < len(p); {
		c := p[i]
		if b.cr {
			b.cr = false
			if c == '\n' {
				b.lineEnd()
				i++
				continue
			}
			b.text([]byte{'\r'}) // a bare CR is text; c is read next
			continue
		}
		if !sp[c] {
			j := i + 1
			for j < len(p) && !sp[p[j]] {
				j++
			}
			b.text(p[i:j])
			i = j
			continue
		}
		switch c {
		case '\r':
			b.cr = true
		case '\n':
			b.lineEnd()
		default: // relaxed whitespace
			b.wsp = true
		}
		i++
	}
	b.flush()
	return len(p), nil
}

func (b *bodyCanon) lineEnd() {
	b.wsp = false // relaxed: whitespace at the end of a line goes
	b.crlfs++
}

// text writes bytes that are neither line breaks nor, in relaxed, whitespace,
// after the line breaks and whitespace held back before them.
func (b *bodyCanon) text(t []byte) {
	for ; b.crlfs > 0; b.crlfs-- {
		b.out = append(b.out, '\r', '\n')
	}
	if b.wsp {
		b.out = append(b.out, ' ')
		b.wsp = false
	}
	b.out = append(b.out, t...)
	b.content = true
	if len(b.out) >= 32*1024 {
		b.flush()
	}
}

func (b *bodyCanon) flush() {
	if len(b.out) == 0 {
		return
	}
	for _, h := range b.hashes {
		p := b.out
		if h.limit >= 0 {
			if left := h.limit - b.length; left < int64(len(p)) {
				p = p[:max(left, 0)]
			}
		}
		if len(p) > 0 {
			h.h.Write(p)
		}
	}
	b.length += int64(len(b.out))
	b.out = b.out[:0]
}

// finish ends the body: trailing empty lines are dropped and a last line
// without a line break gets one. An empty body is CRLF in simple and
// nothing in relaxed (RFC 6376 §3.4.3, §3.4.4, errata 3192).
func (b *bodyCanon) finish() {
	if b.cr {
		b.cr = false
		b.text([]byte{'\r'})
	}
	b.wsp = false
	if b.c == simple || b.content {
		b.out = append(b.out, '\r', '\n')
	}
	b.crlfs = 0
	b.flush()
	for _, h := range b.hashes {
		h.done = h.h.Sum(nil)
		h.total = b.length
	}
}
