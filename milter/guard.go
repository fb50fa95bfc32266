package milter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// maxFrame caps one milter packet. Postfix sends headers of at most
// header_size_limit (100 KiB by default) and body chunks of 64 KiB; the
// milter library itself would accept 512 MiB and allocate it up front.
const maxFrame = 512 << 10

// errBadFrame ends a session whose peer sent a packet we refuse to parse.
var errBadFrame = errors.New("milter: malformed packet")

// guardConn reads the milter stream one whole packet at a time and checks
// each before the milter library sees it. The library indexes packets
// without checking their length (a zero-length packet, or a connect, MAIL
// or RCPT packet without its NUL terminator, panics in a goroutine we do
// not own and would take the daemon down), so a misbehaving peer is cut off
// here and only its own session ends.
//
// It also saves system calls, the largest cost of a milter session: the
// MTA sends the packets that await no reply (HELO, RCPT, each header, end
// of headers, with protocol 6) back to back, so reads go through a buffer
// and one read brings in several packets, where the library alone reads
// each packet's length and body separately (two reads per packet). On the
// way out, the library writes each packet in two writes (length and code,
// then data) and each modification of end of message separately; Write
// holds them back until the packet that ends the reply (see flushable), so
// a reply leaves in one write. The bytes exchanged are the same.
type guardConn struct {
	net.Conn
	rbuf []byte // read from the connection: rbuf[roff:] is not handed out yet
	roff int
	left []byte // what remains of the current packet to hand out

	wmu  sync.Mutex
	wbuf []byte // packets written by the library, not yet sent

	stats  *Stats // the active session count goes down at Close
	closed bool   // under wmu: Close was called
}

// Buffer sizes: readChunk fits the packets of a usual message's header
// section; a packet larger than the buffer grows it, up to maxFrame, and a
// buffer grown beyond keepBuffer is dropped once empty, so that a session
// that once received a large packet does not keep it.
const (
	readChunk  = 4 << 10
	keepBuffer = 64 << 10
	// maxHeldWrite bounds what Write holds back.
	maxHeldWrite = 64 << 10
)

func (c *guardConn) Read(p []byte) (int, error) {
	if len(c.left) == 0 {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.left)
	c.left = c.left[n:]
	c.release()
	return n, nil
}

// readBuffers holds the read buffers of sessions between their bursts of
// packets: a milter connection lives for one SMTP session, and a buffer
// per connection would be most of what a message allocates.
var readBuffers = sync.Pool{New: func() any { return new([readChunk]byte) }}

// release gives the read buffer back to the pool once all it holds has
// been handed out (copied into the library's buffers), until the MTA
// sends more.
func (c *guardConn) release() {
	if len(c.left) == 0 && c.roff == len(c.rbuf) && cap(c.rbuf) == readChunk {
		readBuffers.Put((*[readChunk]byte)(c.rbuf[:readChunk]))
		c.rbuf, c.roff, c.left = nil, 0, nil
	}
}

// next reads and checks one packet.
func (c *guardConn) next() error {
	if err := c.fill(4); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(c.rbuf[c.roff:])
	if n == 0 || n > maxFrame {
		return fmt.Errorf("%w: length %d", errBadFrame, n)
	}
	if err := c.fill(4 + int(n)); err != nil {
		return err
	}
	pkt := c.rbuf[c.roff : c.roff+4+int(n)]
	c.roff += len(pkt)
	if err := checkPacket(pkt[4], pkt[5:]); err != nil {
		return err
	}
	c.left = pkt
	return nil
}

// fill reads until at least n bytes are buffered past roff. When the
// stream ends first it says what io.ReadFull of the length (n == 4), or
// then of the packet's body, would have said: io.EOF when none of its
// bytes arrived, io.ErrUnexpectedEOF when some did.
func (c *guardConn) fill(n int) error {
	if len(c.rbuf)-c.roff >= n {
		return nil
	}
	// Make room: what is left moves to the front, of a new buffer if
	// this one is too small (or too large to keep).
	have := len(c.rbuf) - c.roff
	switch {
	case c.rbuf == nil && n <= readChunk:
		c.rbuf, c.roff = readBuffers.Get().(*[readChunk]byte)[:0], 0
	case cap(c.rbuf) < n || (have == 0 && cap(c.rbuf) > keepBuffer):
		buf := make([]byte, have, max(n, readChunk))
		copy(buf, c.rbuf[c.roff:])
		c.rbuf, c.roff = buf, 0
	case cap(c.rbuf)-c.roff < n:
		c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[c.roff:])]
		c.roff = 0
	}
	for {
		m, err := c.Conn.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		c.rbuf = c.rbuf[:len(c.rbuf)+m]
		have = len(c.rbuf) - c.roff
		if have >= n {
			return nil
		}
		if err == io.EOF {
			// The part io.ReadFull would have been reading: the length,
			// or the body after it.
			if (n == 4 && have > 0) || (n > 4 && have > 4) {
				err = io.ErrUnexpectedEOF
			}
		}
		if err != nil {
			return err
		}
	}
}

// Write holds the library's writes back until they end with a packet that
// ends a reply, then sends them in one write.
func (c *guardConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.wbuf, p...)
	if !flushable(c.wbuf) && len(c.wbuf) < maxHeldWrite {
		return len(p), nil
	}
	_, err := c.Conn.Write(c.wbuf)
	if cap(c.wbuf) > keepBuffer {
		c.wbuf = nil
	} else {
		c.wbuf = c.wbuf[:0]
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends what is held back, if anything (the library does not end a
// session between a modification and its reply, but if it did the MTA
// would see the same bytes as without the buffer), and closes.
func (c *guardConn) Close() error {
	c.wmu.Lock()
	if len(c.wbuf) > 0 {
		_, _ = c.Conn.Write(c.wbuf)
		c.wbuf = nil
	}
	first := !c.closed
	c.closed = true
	c.wmu.Unlock()
	if first && c.stats != nil {
		c.stats.active.Add(-1)
	}
	return c.Conn.Close()
}

// flushable reports whether b holds whole packets the last of which ends
// a reply: anything but a message modification, which end of message
// sends before its final reply (accept, reject, ...). SMFIR_PROGRESS is
// sent at once too: its point is to reach the MTA while we work.
func flushable(b []byte) bool {
	last := byte(0)
	for len(b) > 0 {
		if len(b) < 5 {
			return false
		}
		n := int(binary.BigEndian.Uint32(b))
		if n == 0 || len(b)-4 < n {
			return n == 0 // not a packet: let the MTA see it as it is
		}
		last, b = b[4], b[4+n:]
	}
	switch last {
	case '+', '-', '2', 'b', 'e', 'h', 'i', 'm', 'q': // SMFIR_ADDRCPT ... SMFIR_QUARANTINE
		return false
	}
	return true
}

// checkPacket verifies the structure the library assumes of each command.
func checkPacket(code byte, data []byte) error {
	switch code {
	case 'C': // connect: hostname NUL family [port address NUL]
		i := bytes.IndexByte(data, 0)
		if i < 0 || i+1 >= len(data) {
			return fmt.Errorf("%w: connect without family", errBadFrame)
		}
		switch data[i+1] {
		case '4', '6', 'L':
			if len(data) < i+4 {
				return fmt.Errorf("%w: connect without port", errBadFrame)
			}
		}
	case 'M', 'R': // MAIL, RCPT: address NUL [args]
		if bytes.IndexByte(data, 0) < 0 {
			return fmt.Errorf("%w: %c without terminator", errBadFrame, code)
		}
	}
	return nil
}

// guardListener wraps every accepted connection in a guardConn and
// counts them in stats (nil counts nothing).
type guardListener struct {
	net.Listener
	stats *Stats
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.stats != nil {
		l.stats.sessions.Add(1)
		l.stats.active.Add(1)
	}
	return &guardConn{Conn: c, stats: l.stats}, nil
}
