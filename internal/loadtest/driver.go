package loadtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// Target is a milter socket: network "unix" or "tcp" and its address.
type Target struct {
	Network string
	Address string
}

func (t Target) String() string {
	if t.Network == "unix" {
		return "unix:" + t.Address
	}
	host, port, _ := net.SplitHostPort(t.Address)
	return "inet:" + port + "@" + host
}

// Transport names the network for tables: "unix" or "tcp".
func (t Target) Transport() string { return t.Network }

// DriveOptions say how to load a milter.
type DriveOptions struct {
	Target Target
	Corpus *Corpus
	// Concurrency is the number of sessions in flight at once, each a new
	// milter connection per message, as Postfix opens one per SMTP
	// session.
	Concurrency int
	// Count bounds the number of messages; Duration bounds the time. The
	// first reached ends the run; messages in flight then finish. Zero
	// means no bound (one of them must be set).
	Count    int
	Duration time.Duration
	// First is the corpus index of the first message.
	First int
	// Warm sends the corpus's warm-up messages (Corpus.WarmMessage)
	// instead of its messages.
	Warm bool
	// Timeout bounds each read and write of the MTA side.
	Timeout time.Duration
	// Progress, if not nil, counts the messages finished, as they finish.
	Progress *atomic.Int64
	// Observe, if not nil, is called with the start and latency of every
	// message finished, from the worker goroutines.
	Observe func(start time.Time, took time.Duration)
}

// DriveResult is what one run measured.
type DriveResult struct {
	Target   Target
	Messages int // finished without error
	Errors   int
	// FirstError is the first error seen, for the report.
	FirstError string
	Elapsed    time.Duration
	// Latencies are per message, from dialling to the end-of-message
	// reply, sorted.
	Latencies []time.Duration
	// Actions counts the final verdicts: accept, reject, quarantine,
	// tempfail, discard.
	Actions map[string]int
	// Inserted counts header insertions and additions seen.
	Inserted int
	// NoReply lists the no-reply protocol options the milter negotiated
	// (from the first session); Protocol and Negotiated are all the
	// protocol and action options it negotiated.
	NoReply    []string
	Protocol   gomilter.OptProtocol
	Negotiated gomilter.OptAction
}

// Rate is messages per second.
func (r DriveResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Messages) / r.Elapsed.Seconds()
}

// Percentile returns the q-quantile (0..1) of the latencies.
func (r DriveResult) Percentile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.5) - 1
	i = min(max(i, 0), len(r.Latencies)-1)
	return r.Latencies[i]
}

// Max is the slowest message.
func (r DriveResult) Max() time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[len(r.Latencies)-1]
}

// Drive loads the milter at o.Target until o.Count messages were sent or
// o.Duration passed, or ctx ends.
func Drive(ctx context.Context, o DriveOptions) DriveResult {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	client := gomilter.NewClient(o.Target.Network, o.Target.Address,
		gomilter.WithActions(gomilter.AllClientSupportedActionMasks),
		gomilter.WithDialer(packetDialer{timeout: o.Timeout}),
		gomilter.WithReadTimeout(o.Timeout),
		gomilter.WithWriteTimeout(o.Timeout),
	)

	var (
		next    atomic.Int64
		mu      sync.Mutex
		res     = DriveResult{Target: o.Target, Actions: map[string]int{}}
		noReply sync.Once
		wg      sync.WaitGroup
	)
	message := o.Corpus.Message
	if o.Warm {
		message = o.Corpus.WarmMessage
	}
	start := time.Now()
	for range o.Concurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			actions := map[string]int{}
			var msgs, errs, inserted int
			var firstErr string
			for ctx.Err() == nil {
				n := int(next.Add(1) - 1)
				if o.Count > 0 && n >= o.Count {
					break
				}
				m := message(o.First + n)
				t0 := time.Now()
				out, err := send(client, m, func(s *gomilter.ClientSession) {
					noReply.Do(func() {
						res.NoReply = noReplyOptions(s)
						res.Protocol, res.Negotiated = negotiated(s)
					})
				})
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = fmt.Sprintf("message %d (%s): %v", o.First+n, m.QueueID, err)
					}
					continue
				}
				took := time.Since(t0)
				lat = append(lat, took)
				msgs++
				if o.Observe != nil {
					o.Observe(t0, took)
				}
				if o.Progress != nil {
					o.Progress.Add(1)
				}
				actions[out.action]++
				inserted += out.inserted
			}
			mu.Lock()
			defer mu.Unlock()
			res.Latencies = append(res.Latencies, lat...)
			res.Messages += msgs
			res.Errors += errs
			res.Inserted += inserted
			for k, v := range actions {
				res.Actions[k] += v
			}
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Latencies)
	return res
}

type sent struct {
	action   string
	inserted int
}

// send runs one message through a new milter connection, the steps an MTA
// takes: connect, HELO, MAIL, RCPT, DATA, each header, end of headers, the
// body, end of message; then QUIT.
func send(c *gomilter.Client, m Message, negotiated func(*gomilter.ClientSession)) (sent, error) {
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, AuthservID)
	macros.Set(gomilter.MacroDaemonName, "smtpd")
	macros.Set(gomilter.MacroClientAddr, m.Client)
	macros.Set(gomilter.MacroQueueId, m.QueueID)
	s, err := c.Session(macros)
	if err != nil {
		return sent{}, err
	}
	defer s.Close()
	negotiated(s)
	steps := []func() (*gomilter.Action, error){
		func() (*gomilter.Action, error) { return s.Conn(m.Helo, gomilter.FamilyInet, 42424, m.Client) },
		func() (*gomilter.Action, error) { return s.Helo(m.Helo) },
		func() (*gomilter.Action, error) { return s.Mail(m.MailFrom, "") },
		func() (*gomilter.Action, error) { return s.Rcpt(m.Rcpt, "") },
		s.DataStart,
	}
	for _, step := range steps {
		act, err := step()
		if err != nil {
			return sent{}, err
		}
		if act.Type != gomilter.ActionContinue {
			return sent{action: actionWord(act, nil)}, nil
		}
	}
	for _, h := range m.Headers {
		act, err := s.HeaderField(h[0], h[1], nil)
		if err != nil {
			return sent{}, err
		}
		if act.Type != gomilter.ActionContinue {
			return sent{action: actionWord(act, nil)}, nil
		}
	}
	if act, err := s.HeaderEnd(); err != nil {
		return sent{}, err
	} else if act.Type != gomilter.ActionContinue {
		return sent{action: actionWord(act, nil)}, nil
	}
	mods, act, err := s.BodyReadFrom(strings.NewReader(m.Body))
	if err != nil {
		return sent{}, err
	}
	out := sent{action: actionWord(act, mods)}
	for _, mod := range mods {
		if mod.Type == gomilter.ActionInsertHeader || mod.Type == gomilter.ActionAddHeader {
			out.inserted++
		}
	}
	return out, nil
}

func actionWord(act *gomilter.Action, mods []gomilter.ModifyAction) string {
	switch act.Type {
	case gomilter.ActionAccept, gomilter.ActionContinue:
		for _, m := range mods {
			if m.Type == gomilter.ActionQuarantine {
				return "quarantine"
			}
		}
		return "accept"
	case gomilter.ActionDiscard:
		return "discard"
	case gomilter.ActionReject:
		return "reject"
	case gomilter.ActionTempFail:
		return "tempfail"
	case gomilter.ActionRejectWithCode:
		if act.SMTPCode/100 == 4 {
			return "tempfail"
		}
		return "reject"
	}
	return fmt.Sprintf("action-%d", act.Type)
}

// negotiated reads back the protocol and action options of a session.
func negotiated(s *gomilter.ClientSession) (gomilter.OptProtocol, gomilter.OptAction) {
	var p gomilter.OptProtocol
	var a gomilter.OptAction
	for bit := range 32 {
		if s.ProtocolOption(gomilter.OptProtocol(1) << bit) {
			p |= gomilter.OptProtocol(1) << bit
		}
		if s.ActionOption(gomilter.OptAction(1) << bit) {
			a |= gomilter.OptAction(1) << bit
		}
	}
	return p, a
}

// noReplyOptions names the no-reply options a session negotiated.
func noReplyOptions(s *gomilter.ClientSession) []string {
	var out []string
	for _, o := range []struct {
		opt  gomilter.OptProtocol
		name string
	}{
		{gomilter.OptNoConnReply, "connect"}, {gomilter.OptNoHeloReply, "helo"},
		{gomilter.OptNoMailReply, "mail"}, {gomilter.OptNoRcptReply, "rcpt"},
		{gomilter.OptNoDataReply, "data"}, {gomilter.OptNoHeaderReply, "header"},
		{gomilter.OptNoEOHReply, "eoh"}, {gomilter.OptNoBodyReply, "body"},
	} {
		if s.ProtocolOption(o.opt) {
			out = append(out, o.name)
		}
	}
	if s.ProtocolOption(gomilter.OptNoBody) {
		out = append(out, "(no body)")
	}
	return out
}

// packetDialer gives the go-milter client what Postfix's milter8 client
// does: each milter packet leaves in one write (go-milter's client writes
// the length and command byte, then the data, in two), and replies are
// read through a buffer. Without it the driver would spend twice the
// system calls per packet that an MTA spends, on the same two cores as
// the milter it measures.
type packetDialer struct{ timeout time.Duration }

func (d packetDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr, d.timeout)
	if err != nil {
		return nil, err
	}
	return &packetConn{Conn: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

type packetConn struct {
	net.Conn
	r *bufio.Reader
	w []byte
}

// Write collects bytes until they form whole packets, then writes them at
// once.
func (c *packetConn) Write(p []byte) (int, error) {
	c.w = append(c.w, p...)
	off := 0
	for len(c.w)-off >= 4 {
		n := int(binary.BigEndian.Uint32(c.w[off:]))
		if len(c.w)-off-4 < n {
			break
		}
		off += 4 + n
	}
	if off != len(c.w) {
		return len(p), nil
	}
	_, err := c.Conn.Write(c.w)
	c.w = c.w[:0]
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *packetConn) Read(p []byte) (int, error) {
	if len(c.w) > 0 {
		return 0, errors.New("loadtest: read with a partial packet unsent")
	}
	return c.r.Read(p)
}
