package postfixtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// fakeMilter is just enough of a milter (protocol version 6) to test the
// harness without the real one: it inserts an Authentication-Results field
// at the top of every message and does what the message's X-Fake-Milter
// field says: "reject" (550 5.7.1), "tempfail" (451 4.7.1), "quarantine"
// or, by default, accept.
type fakeMilter struct {
	ln net.Listener

	mu       sync.Mutex
	sessions int      // milter connections
	seen     []eomSaw // one per end of message
}

// eomSaw is what the fake milter knew at the end of a message.
type eomSaw struct {
	session    int
	clientName string // from the connect event
	clientAddr string
	helo       string
	sender     string
}

// fakeMilterARField is the field the fake milter inserts at index 0.
const fakeMilterARField = "Authentication-Results"
const fakeMilterARValue = "fake.milter; none"

func startFakeMilter(t *testing.T, ln net.Listener) *fakeMilter {
	m := &fakeMilter{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			m.sessions++
			n := m.sessions
			m.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := m.serve(c, n); err != nil && !errors.Is(err, io.EOF) {
					t.Errorf("fake milter session %d: %v", n, err)
				}
			}()
		}
	}()
	return m
}

func (m *fakeMilter) saw() (sessions int, seen []eomSaw) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions, append([]eomSaw(nil), m.seen...)
}

// Milter protocol constants (libmilter's mfdef.h).
const (
	smfifAddHdrs    = 0x01
	smfifChgHdrs    = 0x10
	smfifQuarantine = 0x20
)

func (m *fakeMilter) serve(c net.Conn, session int) error {
	r := bufio.NewReader(c)
	var (
		clientName, clientAddr, helo, sender, action string
	)
	send := func(cmd byte, data ...[]byte) error {
		var body []byte
		body = append(body, cmd)
		for _, d := range data {
			body = append(body, d...)
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
		_, err := c.Write(append(hdr[:], body...))
		return err
	}
	cstr := func(s string) []byte { return append([]byte(s), 0) }
	u32 := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > 1<<20 {
			return errors.New("bad packet length")
		}
		pkt := make([]byte, n)
		if _, err := io.ReadFull(r, pkt); err != nil {
			return err
		}
		cmd, data := pkt[0], pkt[1:]
		fields := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
		var err error
		switch cmd {
		case 'O': // option negotiation: version 6, the actions we use, every step with a reply
			err = send('O', u32(6), u32(smfifAddHdrs|smfifChgHdrs|smfifQuarantine), u32(0))
		case 'D', 'A': // macros, abort: no reply
			if cmd == 'A' {
				sender, action = "", ""
			}
		case 'C': // connect: hostname \0 family port(2) address \0
			host, rest, _ := bytes.Cut(data, []byte{0})
			clientName = string(host)
			if len(rest) >= 3 {
				clientAddr = strings.TrimSuffix(string(rest[3:]), "\x00")
			}
			err = send('c')
		case 'H':
			helo = fields[0]
			err = send('c')
		case 'M':
			sender = fields[0]
			err = send('c')
		case 'L': // header: name \0 value \0
			if len(fields) == 2 && strings.EqualFold(fields[0], "X-Fake-Milter") {
				action = strings.TrimSpace(fields[1])
			}
			err = send('c')
		case 'R', 'T', 'N', 'B', 'U':
			err = send('c')
		case 'E': // end of message
			m.mu.Lock()
			m.seen = append(m.seen, eomSaw{session, clientName, clientAddr, helo, sender})
			m.mu.Unlock()
			if err = send('i', u32(0), cstr(fakeMilterARField), cstr(fakeMilterARValue)); err != nil {
				return err
			}
			switch action {
			case "reject":
				err = send('y', cstr("550 5.7.1 fake milter says no"))
			case "tempfail":
				err = send('y', cstr("451 4.7.1 fake milter says later"))
			case "quarantine":
				if err = send('q', cstr("fake milter quarantine")); err == nil {
					err = send('c')
				}
			default:
				err = send('c')
			}
			sender, action = "", ""
		case 'Q':
			return nil
		case 'K': // quit, new connection follows on the same socket
			clientName, clientAddr, helo, sender, action = "", "", "", "", ""
		default:
			return errors.New("unknown milter command " + string(cmd))
		}
		if err != nil {
			return err
		}
	}
}
