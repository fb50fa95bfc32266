package arc

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// BenchmarkBodyCanon measures the streaming body canonicalization and
// hashing, which every verified message's body goes through.
func BenchmarkBodyCanon(b *testing.B) {
	body := []byte(strings.Repeat("A line of text,  with   some spaces \tand tabs.  \r\n", 20000))
	for _, c := range []canon{simple, relaxed} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				bc := &bodyCanon{c: c, hashes: []*bodyHash{{h: sha256.New(), limit: -1}}}
				for p := body; len(p) > 0; {
					n := min(65535, len(p))
					bc.Write(p[:n])
					p = p[n:]
				}
				bc.finish()
			}
		})
	}
}
