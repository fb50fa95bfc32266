package postfixtest

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const wait = 10 * time.Second

func msg(from, to, subject string, extra ...string) Message {
	h := "From: " + from + "\nTo: " + to + "\nSubject: " + subject + "\n"
	for _, e := range extra {
		h += e + "\n"
	}
	return Message{From: from, To: []string{to}, Data: []byte(h + "\nhello\n")}
}

// deadAddr returns an address on 127.0.0.1 where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDeliverWithoutMilter(t *testing.T) {
	t.Parallel()
	p := Start(t, Options{})

	data := "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: round trip\r\n" +
		"X-Folded: first\r\n\tsecond\r\n\r\nline one\n.leading dot\n..two dots\nlast line without newline"
	r := p.SendFrom(t, ClientOptions{Helo: "outside.example"}, Message{
		From: "alice@example.com",
		To:   []string{"Bob@Example.org"},
		Data: []byte(data),
	})[0]
	if !r.Accepted() || r.Code != 250 || r.Enhanced != "2.0.0" || r.QueueID == "" {
		t.Fatalf("send: %v (%+v)", r, r)
	}
	got := p.DeliveredQueueID(t, r.QueueID, wait)
	if len(got) != 1 {
		t.Fatalf("delivered %d copies of %s, want 1", len(got), r.QueueID)
	}
	m := got[0]
	if m.ReturnPath != "alice@example.com" || !strings.EqualFold(m.DeliveredTo, "bob@example.org") || m.OriginalTo != "Bob@Example.org" {
		t.Errorf("envelope: Return-Path %q, Delivered-To %q, X-Original-To %q", m.ReturnPath, m.DeliveredTo, m.OriginalTo)
	}
	if want := []string{"Received", "From", "To", "Subject", "X-Folded"}; !slices.Equal(m.Header.Names()[:5], want) {
		t.Errorf("header fields %v, want %v first", m.Header.Names(), want)
	}
	rcv := m.Header[0].Value
	for _, want := range []string{"from outside.example (unknown [127.0.0.2])", "by " + DefaultHostname + " (Postfix) with ESMTP id " + r.QueueID} {
		if !strings.Contains(rcv, want) {
			t.Errorf("Received: %q lacks %q", rcv, want)
		}
	}
	if f := m.Header[m.Header.Index("X-Folded")]; f.Value != "first\tsecond" || f.Raw != "X-Folded: first\n\tsecond" {
		t.Errorf("folded field: %+v", f)
	}
	if want := "line one\n.leading dot\n..two dots\nlast line without newline\n"; string(m.Body) != want {
		t.Errorf("body %q, want %q", m.Body, want)
	}
	if len(p.Delivered(t, "bob@example.org", 0)) != 1 || len(p.Delivered(t, "nobody@example.org", 0)) != 0 {
		t.Errorf("Delivered does not filter by recipient")
	}
	if held := p.Held(t); len(held) != 0 {
		t.Errorf("held: %+v", held)
	}
	if !p.WaitLog("status=sent (delivered to maildir)", wait) {
		t.Errorf("log lacks the delivery:\n%s", p.Log())
	}
}

// Two messages in one SMTP session, one milter session: both keep the
// client address and HELO, the null sender works, each gets its queue id.
func TestTwoMessagesOneSession(t *testing.T) {
	t.Parallel()
	fm := startFakeMilter(t, listen(t))
	p := Start(t, Options{Milter: "inet:" + fm.ln.Addr().String()})

	rs := p.SendFrom(t, ClientOptions{Helo: "two.example"},
		msg("a@example.com", "one@example.org", "first"),
		Message{From: "", To: []string{"two@example.org"}, Data: []byte("From: b@example.com\nSubject: second\n\nbounce\n")},
	)
	if !rs[0].Accepted() || !rs[1].Accepted() || rs[0].QueueID == rs[1].QueueID {
		t.Fatalf("results: %v; %v", rs[0], rs[1])
	}
	for i, r := range rs {
		got := p.DeliveredQueueID(t, r.QueueID, wait)
		if len(got) != 1 {
			t.Fatalf("message %d (%s) not delivered", i, r.QueueID)
		}
		m := got[0]
		if m.Header[0].Name != fakeMilterARField || m.Header[0].Value != fakeMilterARValue {
			t.Errorf("message %d: first field %q, want the milter's: %v", i, m.Header[0].Raw, m.Header.Names())
		}
		if m.Header[1].Name != "Received" || !strings.Contains(m.Header[1].Value, "from two.example (unknown [127.0.0.2])") {
			t.Errorf("message %d: second field %q, want Postfix's Received:", i, m.Header[1].Raw)
		}
	}
	if m := p.DeliveredQueueID(t, rs[1].QueueID, 0)[0]; m.ReturnPath != "" {
		t.Errorf("null sender delivered with Return-Path %q", m.ReturnPath)
	}
	sessions, seen := fm.saw()
	if sessions != 1 || len(seen) != 2 {
		t.Fatalf("milter saw %d sessions, %d messages; want 1, 2", sessions, len(seen))
	}
	for i, s := range seen {
		// With smtpd_peername_lookup = no, Postfix names the client
		// "unknown" in its log but gives the milter the address in
		// brackets.
		if s.clientName != "[127.0.0.2]" || s.clientAddr != "127.0.0.2" || s.helo != "two.example" {
			t.Errorf("milter, message %d: client %q [%q] helo %q", i, s.clientName, s.clientAddr, s.helo)
		}
	}
	if n := strings.Count(p.Log(), "]: connect from unknown[127.0.0.2]"); n != 1 {
		t.Errorf("log shows %d connections, want 1", n)
	}
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// The milter's verdicts reach the SMTP client and the queue, over TCP and
// over a unix socket.
func TestMilterVerdicts(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"inet", "unix"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			var addr string
			var ln net.Listener
			if network == "inet" {
				ln = listen(t)
				addr = "inet:" + ln.Addr().String()
			} else {
				ln, addr = ListenUnix(t)
			}
			fm := startFakeMilter(t, ln)
			p := Start(t, Options{Milter: addr})

			s := p.Dial(t, ClientOptions{})
			rej := s.Send(msg("a@example.com", "r@example.org", "reject", "X-Fake-Milter: reject"))
			tmp := s.Send(msg("a@example.com", "t@example.org", "tempfail", "X-Fake-Milter: tempfail"))
			hold := s.Send(msg("a@example.com", "q@example.org", "hold", "X-Fake-Milter: quarantine"))
			ok := s.Send(msg("a@example.com", "ok@example.org", "accept"))
			s.Quit()

			if rej.Stage != StageEnd || rej.Code != 550 || rej.Enhanced != "5.7.1" || rej.Text != "fake milter says no" {
				t.Errorf("reject: %v", rej)
			}
			if tmp.Stage != StageEnd || tmp.Code != 451 || tmp.Enhanced != "4.7.1" || tmp.Text != "fake milter says later" {
				t.Errorf("tempfail: %v", tmp)
			}
			if !hold.Accepted() || !ok.Accepted() {
				t.Fatalf("quarantine: %v; accept: %v", hold, ok)
			}
			if got := p.DeliveredQueueID(t, ok.QueueID, wait); len(got) != 1 || got[0].Header[0].Value != fakeMilterARValue {
				t.Errorf("accepted message: %+v", got)
			}
			p.WaitDrained(t, wait)
			held := p.Held(t)
			if len(held) != 1 || held[0].QueueID != hold.QueueID || held[0].Sender != "a@example.com" ||
				len(held[0].Recipients) != 1 || held[0].Recipients[0].Address != "q@example.org" {
				t.Fatalf("hold queue: %+v, want %s", held, hold.QueueID)
			}
			qm := p.QueuedMail(t, hold.QueueID)
			if qm.Header[0].Name != fakeMilterARField || qm.Header.Get("Subject") != "hold" || string(qm.Body) != "hello\n" {
				t.Errorf("held message: %v %q", qm.Header.Names(), qm.Body)
			}
			if all := p.Mailbox(t); len(all) != 1 {
				t.Errorf("maildir holds %d messages, want only the accepted one", len(all))
			}
			if sessions, _ := fm.saw(); sessions != 1 {
				t.Errorf("milter sessions: %d", sessions)
			}
		})
	}
}

// With the milter down, Postfix's milter_default_action answers: reject
// refuses the connection in the greeting, tempfail refuses MAIL FROM.
func TestMilterDown(t *testing.T) {
	t.Parallel()
	t.Run("reject", func(t *testing.T) {
		t.Parallel()
		p := Start(t, Options{Milter: "inet:" + deadAddr(t), MilterDefaultAction: "reject"})
		s := p.Dial(t, ClientOptions{})
		r := s.Send(msg("a@example.com", "b@example.org", "x"))
		if r.Stage != StageConnect || r.Code != 554 || s.Greeting.Code != 554 {
			t.Errorf("got %v, want a 554 greeting", r)
		}
		if q := s.Quit(); q.Code != 221 {
			t.Errorf("QUIT after a refused greeting: %v", q)
		}
		if !p.WaitLog("Connection refused", wait) {
			t.Errorf("log lacks the milter failure:\n%s", p.Log())
		}
	})
	t.Run("tempfail", func(t *testing.T) {
		t.Parallel()
		p := Start(t, Options{Milter: "inet:" + deadAddr(t)})
		r := p.Send(t, msg("a@example.com", "b@example.org", "x"))
		if r.Stage != StageMail || r.Code != 451 || r.Enhanced != "4.7.1" {
			t.Errorf("got %v, want 451 4.7.1 at MAIL", r)
		}
		if got := p.Delivered(t, "", 0); len(got) != 0 {
			t.Errorf("delivered: %d", len(got))
		}
	})
}

// Each Stop leaves no process, listener nor file of the instance behind,
// while another instance runs on.
func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	a := Start(t, Options{})
	b := Start(t, Options{})
	if a.SMTPAddr() == b.SMTPAddr() || a.Dir() == b.Dir() || a.name == b.name {
		t.Fatalf("instances share %s / %s", a.SMTPAddr(), a.Dir())
	}
	for _, p := range []*Postfix{a, b} {
		if len(p.processes()) == 0 {
			t.Fatalf("%s: no processes found", p.name)
		}
		if r := p.Send(t, msg("a@example.com", "b@example.org", p.name)); !r.Accepted() {
			t.Fatalf("%s: %v", p.name, r)
		}
		if len(p.Delivered(t, "b@example.org", wait)) != 1 {
			t.Fatalf("%s: not delivered", p.name)
		}
	}
	a.Stop(t)
	assertGone(t, a)
	if r := b.Send(t, msg("a@example.com", "c@example.org", "still there")); !r.Accepted() {
		t.Fatalf("b after a stopped: %v", r)
	}
	b.Stop(t)
	assertGone(t, b)
}

func assertGone(t *testing.T, p *Postfix) {
	t.Helper()
	if pids := p.processes(); len(pids) != 0 {
		t.Errorf("%s: processes left: %v", p.name, pids)
	}
	if inodes, _ := listeningInodes(net.IPv4(127, 0, 0, 1), p.port); len(inodes) != 0 {
		t.Errorf("%s: something still listens on %s", p.name, p.SMTPAddr())
	}
	if _, err := os.Stat(p.Dir()); !os.IsNotExist(err) {
		t.Errorf("%s: %s still there: %v", p.name, p.Dir(), err)
	}
}

func TestExtraMainAndConfig(t *testing.T) {
	t.Parallel()
	p := Start(t, Options{ExtraMain: map[string]string{
		"myhostname":    "mx.elsewhere.test",
		"header_checks": "regexp:{{/^Subject: hold me/ HOLD held by header_checks}}",
	}})
	if p.Hostname() != "mx.elsewhere.test" || !strings.Contains(p.Config(), "\nmyhostname = mx.elsewhere.test\n") {
		t.Errorf("myhostname not replaced:\n%s", p.Config())
	}
	r := p.Send(t, msg("a@example.com", "b@example.org", "hold me"))
	if !r.Accepted() {
		t.Fatalf("%v", r)
	}
	held := p.Held(t)
	if len(held) != 1 || held[0].QueueID != r.QueueID {
		t.Fatalf("held: %+v", held)
	}
	if got := p.QueuedMail(t, r.QueueID).Header.Get("Received"); !strings.Contains(got, "by mx.elsewhere.test (Postfix)") {
		t.Errorf("Received: %q", got)
	}
}

func TestParseMail(t *testing.T) {
	for _, tc := range []struct {
		in    string
		names []string
		body  string
	}{
		{"A: 1\nB:2\n\nbody\n", []string{"A", "B"}, "body\n"},
		{"A: 1\r\n folded\r\n\r\nbody\r\n", []string{"A"}, "body\r\n"},
		{"A: 1\n", []string{"A"}, ""},
		{"\nbody", nil, "body"},
	} {
		m, err := ParseMail([]byte(tc.in))
		if err != nil || !slices.Equal(m.Header.Names(), tc.names) || string(m.Body) != tc.body {
			t.Errorf("ParseMail(%q) = %v %q, %v", tc.in, m.Header.Names(), m.Body, err)
		}
	}
	m, _ := ParseMail([]byte("A: 1\r\n folded\r\n\r\n"))
	if m.Header[0].Value != "1 folded" || m.Header[0].Raw != "A: 1\n folded" {
		t.Errorf("folded: %+v", m.Header[0])
	}
	for _, bad := range []string{" lead\n\n", "no colon\n\n", "two words: x\n\n"} {
		if _, err := ParseMail([]byte(bad)); err == nil {
			t.Errorf("ParseMail(%q): no error", bad)
		}
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		code     int
		msg      string
		enhanced string
		text     string
	}{
		{550, "5.7.1 rejected by DMARC policy", "5.7.1", "rejected by DMARC policy"},
		{250, "2.0.0 Ok: queued as ABC", "2.0.0", "Ok: queued as ABC"},
		{220, "mx ESMTP Postfix", "", "mx ESMTP Postfix"},
		{550, "5.7.1 line one\n5.7.1 line two", "5.7.1", "line one\nline two"},
		{451, "4.7.1", "4.7.1", ""},
	} {
		r := parseReply(tc.code, tc.msg)
		if r.Enhanced != tc.enhanced || r.Text != tc.text {
			t.Errorf("parseReply(%d, %q) = %+v", tc.code, tc.msg, r)
		}
	}
}

// The reaper stops an instance whose owner died and leaves a live owner's
// instance alone.
func TestReapOrphans(t *testing.T) {
	t.Parallel()
	p := Start(t, Options{KeepDir: true})
	t.Cleanup(func() { os.RemoveAll(p.Dir()) })
	self, _ := os.ReadFile(filepath.Join(p.Dir(), ownerFile))

	reapAll()
	if len(p.processes()) == 0 {
		t.Fatalf("reaped an instance whose owner runs")
	}
	// Pretend the owner is a process that has exited: this process's pid
	// with another start time.
	f := strings.Fields(string(self))
	f[1] = "1"
	if err := os.WriteFile(filepath.Join(p.Dir(), ownerFile), []byte(strings.Join(f, " ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reapAll()
	if pids := p.processes(); len(pids) != 0 {
		t.Errorf("orphan still runs: %v", pids)
	}
	if _, err := os.Stat(p.Dir()); !os.IsNotExist(err) {
		t.Errorf("orphan's directory still there")
	}
}

// When the port picked is taken before master binds it, Start tries
// another. Slow (3s): a Postfix daemon sleeps a second before it exits on
// a fatal error, and three do.
func TestPortTakenRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	taken := listen(t)
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	pick := func() int {
		calls++
		if calls == 1 {
			return takenPort
		}
		return freePort()
	}

	p := Start(t, Options{pickPort: pick})
	if calls != 2 || p.port == takenPort {
		t.Fatalf("picked %d ports, runs on %d (taken: %d)", calls, p.port, takenPort)
	}
	if r := p.Send(t, msg("a@example.com", "b@example.org", "retry")); !r.Accepted() {
		t.Fatalf("%v", r)
	}
}
