package milter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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
type guardConn struct {
	net.Conn
	buf  []byte // the current packet, length prefix included
	left []byte // what remains of buf to hand out
}

func (c *guardConn) Read(p []byte) (int, error) {
	if len(c.left) == 0 {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.left)
	c.left = c.left[n:]
	return n, nil
}

// next reads and checks one packet.
func (c *guardConn) next() error {
	var hdr [4]byte
	if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxFrame {
		return fmt.Errorf("%w: length %d", errBadFrame, n)
	}
	if cap(c.buf) < int(n)+4 {
		c.buf = make([]byte, 0, int(n)+4)
	}
	c.buf = append(c.buf[:0], hdr[:]...)
	c.buf = c.buf[:4+n]
	if _, err := io.ReadFull(c.Conn, c.buf[4:]); err != nil {
		return err
	}
	if err := checkPacket(c.buf[4], c.buf[5:]); err != nil {
		return err
	}
	c.left = c.buf
	return nil
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

// guardListener wraps every accepted connection in a guardConn.
type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c}, nil
}
