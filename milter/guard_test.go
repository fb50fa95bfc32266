package milter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// scriptConn is a net.Conn whose reads return the chunks given, one per
// Read (then end), and whose writes are recorded one by one.
type scriptConn struct {
	net.Conn
	chunks [][]byte
	end    error // returned once the chunks are used up; io.EOF if nil
	writes [][]byte
	closed bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		if c.end != nil {
			return 0, c.end
		}
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if n < len(c.chunks[0]) {
		c.chunks[0] = c.chunks[0][n:]
	} else {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *scriptConn) Close() error { c.closed = true; return nil }

// readPackets reads from g the way the milter library does (the length,
// then the body) until an error.
func readPackets(g *guardConn) ([][]byte, error) {
	var out [][]byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(g, hdr[:]); err != nil {
			return out, err
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(g, body); err != nil {
			return out, err
		}
		out = append(out, body)
	}
}

// split cuts b into chunks of the given sizes, the rest in one.
func split(b []byte, sizes ...int) [][]byte {
	var out [][]byte
	for _, n := range sizes {
		if n > len(b) {
			break
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

func TestGuardReadsPacketsHoweverTheyArrive(t *testing.T) {
	big := packet('L', append([]byte("X-Big\x00"), bytes.Repeat([]byte("b"), 200<<10)...))
	var stream []byte
	var want [][]byte
	for _, p := range [][]byte{
		optneg(),
		packet('D', []byte("Cj\x00mx.example\x00")),
		packet('C', []byte("host\x004\x00\x19192.0.2.1\x00")),
		packet('M', []byte("<a@example.com>\x00")),
		packet('L', []byte("From\x00a@example.com\x00")),
		big,
		packet('N', nil),
		packet('E', nil),
	} {
		stream = append(stream, p...)
		want = append(want, p[4:])
	}
	ones := make([]int, len(stream))
	for i := range ones {
		ones[i] = 1
	}
	cases := map[string][][]byte{
		"all at once":       {stream},
		"a byte at a time":  split(stream, ones...),
		"split at lengths":  split(stream, 2, 3, 14, 1, 7, 5000, 3, 1<<20),
		"packets then tail": split(stream, 17, 40, 90, 100000),
	}
	for name, chunks := range cases {
		t.Run(name, func(t *testing.T) {
			g := &guardConn{Conn: &scriptConn{chunks: chunks}}
			got, err := readPackets(g)
			if err != io.EOF {
				t.Errorf("after the last packet: %v, want io.EOF", err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d packets, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("packet %d differs (%d bytes, want %d)", i, len(got[i]), len(want[i]))
				}
			}
			if cap(g.rbuf) > keepBuffer {
				t.Errorf("buffer of %d bytes kept after the large packet", cap(g.rbuf))
			}
		})
	}
}

func TestGuardEndsAsReadFullWould(t *testing.T) {
	p := packet('C', []byte("host\x00U"))
	cases := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"nothing", nil, io.EOF},
		{"part of a length", p[:2], io.ErrUnexpectedEOF},
		{"a length alone", p[:4], io.EOF},
		{"part of a body", p[:7], io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunks := range [][][]byte{{c.stream}, split(c.stream, 1, 1, 1, 1, 1, 1)} {
				g := &guardConn{Conn: &scriptConn{chunks: chunks}}
				if _, err := g.Read(make([]byte, 4)); err != c.want {
					t.Errorf("chunks %d: %v, want %v", len(chunks), err, c.want)
				}
			}
		})
	}
	timeout := &net.OpError{Op: "read", Err: errors.New("i/o timeout")}
	g := &guardConn{Conn: &scriptConn{chunks: [][]byte{p[:6]}, end: timeout}}
	if _, err := g.Read(make([]byte, 4)); err != timeout {
		t.Errorf("a read error mid-packet: %v, want it passed on", err)
	}
}

func TestGuardRefusesBadPackets(t *testing.T) {
	for name, stream := range map[string][]byte{
		"zero length":       {0, 0, 0, 0},
		"over the cap":      {0, 0x10, 0, 0, 'L'},
		"MAIL without NUL":  packet('M', []byte("<a@b>")),
		"connect truncated": packet('C', []byte("host\x004\x00")),
	} {
		g := &guardConn{Conn: &scriptConn{chunks: [][]byte{stream}}}
		if _, err := g.Read(make([]byte, 4)); !errors.Is(err, errBadFrame) {
			t.Errorf("%s: %v, want errBadFrame", name, err)
		}
	}
}

func TestGuardSendsEachReplyInOneWrite(t *testing.T) {
	c := &scriptConn{}
	g := &guardConn{Conn: c}
	write := func(p []byte) {
		t.Helper()
		// As the library writes a packet: length and code, then data.
		for _, part := range [][]byte{p[:5], p[5:]} {
			if len(part) == 0 {
				continue
			}
			if n, err := g.Write(part); err != nil || n != len(part) {
				t.Fatalf("Write: %d, %v", n, err)
			}
		}
	}
	neg := packet('O', make([]byte, 12))
	write(neg)
	cont := packet('c', nil)
	write(cont)
	ins := packet('i', []byte("\x00\x00\x00\x00Authentication-Results\x00mx; dmarc=pass\x00"))
	chg := packet('m', []byte("\x00\x00\x00\x01Authentication-Results\x00\x00"))
	q := packet('q', []byte("held\x00"))
	acc := packet('a', nil)
	write(chg)
	write(ins)
	write(q)
	if len(c.writes) != 2 {
		t.Fatalf("%d writes before the final reply, want 2 (negotiation, continue)", len(c.writes))
	}
	write(acc)
	want := [][]byte{neg, cont, bytes.Join([][]byte{chg, ins, q, acc}, nil)}
	if len(c.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(c.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(c.writes[i], want[i]) {
			t.Errorf("write %d = %q, want %q", i, c.writes[i], want[i])
		}
	}
	// Progress goes out at once; a modification still held at Close too.
	c.writes = nil
	write(packet('p', nil))
	write(ins)
	if len(c.writes) != 1 {
		t.Errorf("progress: %d writes, want 1", len(c.writes))
	}
	g.Close()
	if len(c.writes) != 2 || !bytes.Equal(c.writes[1], ins) || !c.closed {
		t.Errorf("Close: writes %q, closed %v", c.writes, c.closed)
	}
}
