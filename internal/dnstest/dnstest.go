// Package dnstest runs a small authoritative DNS server on 127.0.0.1 for
// tests: the code under test talks real DNS, over UDP and TCP, to data the
// test wrote in master-file syntax, and the test can make any name fail in
// the ways real servers fail (SERVFAIL, REFUSED, silence, truncation, delay)
// and count the queries that reached the server.
//
//	s := dnstest.Start(t,
//		`example.com. 300 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300`,
//		`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`,
//	)
//	s.Fail("_dmarc.example.org.", dns.RcodeServerFailure)
//	// point the resolver under test at s.Addr()
//
// The server answers for every name, like the recursive resolver it stands
// in for, with these semantics:
//
//   - A name exists when it owns records or a name below it does (an empty
//     non-terminal). A name that does not exist gets NXDOMAIN; a name that
//     exists without records of the type asked gets NOERROR with no answer
//     (NODATA).
//   - Negative answers carry, in the authority section, the SOA of the
//     closest enclosing zone, a zone being any name that owns an SOA record
//     in the data. The SOA is served as written: a real server would lower
//     its TTL to the SOA MINIMUM (RFC 2308 §3), write it that way if it
//     matters. With no SOA in the data, negative answers carry none, as a
//     broken server's would.
//   - A CNAME is answered, and followed while its target is in the same zone
//     as its owner, as an authoritative server does; a target in another
//     zone is left to the client to chase.
//   - A wildcard owner (*.example.com.) answers for names below its parent
//     that do not exist (RFC 4592), with the owner rewritten to the name
//     asked.
//   - Replies over UDP are cut to the size the query allows (512 octets, or
//     its EDNS0 size) with TC set, so large answers need TCP, as in real
//     life.
//
// Names given to the methods are case-insensitive and may omit the final dot.
package dnstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// maxChase bounds how many CNAMEs the server follows inside one answer, so
// that a loop in the test data cannot hang it.
const maxChase = 8

// Server is a running test DNS server. Its methods may be called while
// queries are being served.
type Server struct {
	t    testing.TB
	addr string
	done chan struct{} // closed at cleanup; releases delayed handlers

	mu      sync.Mutex
	data    map[string][]dns.RR // owner (lowercase FQDN) → its records
	faults  map[string]fault    // query name (lowercase FQDN) → how to misbehave
	queries map[query]int
}

type query struct {
	name  string
	qtype uint16
}

// fault is how the server misbehaves for one name; the zero value is none.
type fault struct {
	rcode    int // answer with this rcode and nothing else, if not 0
	drop     bool
	truncate bool
	delay    time.Duration
}

// TXT returns a TXT record at owner (fully qualified), TTL 300, holding
// text, in the master-file syntax Start takes. A text longer than 255
// octets, such as a DKIM key or a long SPF record, needs no splitting: the
// zone parser cuts it into character-strings of 255 octets, as a zone file
// must hold it. '"' and '\' are escaped.
func TXT(owner, text string) string {
	text = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(text)
	return owner + ` 300 IN TXT "` + text + `"`
}

// Start starts a server on 127.0.0.1, UDP and TCP on the same random port,
// loaded with zone: resource records in master-file syntax, one per string,
// owners fully qualified ("_dmarc.example.com. 300 IN TXT \"v=DMARC1\"").
// A record that does not parse fails the test. The server stops when the
// test ends.
func Start(t testing.TB, zone ...string) *Server {
	t.Helper()
	return start(t, listen, zone)
}

// StartOn is Start on a given address, UDP and TCP, such as
// "127.0.0.1:53" inside a network namespace where a resolver that cannot
// be told a port (libresolv's /etc/resolv.conf) must find the server. An
// address that cannot be listened on fails the test.
func StartOn(t testing.TB, addr string, zone ...string) *Server {
	t.Helper()
	return start(t, func(t testing.TB) (net.PacketConn, net.Listener) {
		t.Helper()
		pc, l, err := Listen(addr)
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		return pc, l
	}, zone)
}

func start(t testing.TB, listen func(testing.TB) (net.PacketConn, net.Listener), zone []string) *Server {
	t.Helper()
	s := &Server{
		t:       t,
		done:    make(chan struct{}),
		data:    make(map[string][]dns.RR),
		faults:  make(map[string]fault),
		queries: make(map[query]int),
	}
	s.Set(zone...)

	pc, l := listen(t)
	s.addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS)}
	tcp := &dns.Server{Listener: l, Handler: dns.HandlerFunc(s.serveDNS)}
	var serving sync.WaitGroup
	for _, srv := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		serving.Go(func() {
			if err := srv.ActivateAndServe(); err != nil {
				t.Errorf("dnstest: serve: %v", err)
			}
		})
		<-started
	}
	t.Cleanup(func() {
		close(s.done)
		udp.Shutdown()
		tcp.Shutdown()
		serving.Wait() // no t.Errorf after the test is over
	})
	return s
}

// listen opens a UDP socket and a TCP listener on one random port of
// 127.0.0.1.
func listen(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	pc, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	return pc, l
}

// Listen opens a UDP socket and a TCP listener on the same address, as a
// DNS server needs. For port 0 another process may hold the TCP side of
// the port the kernel picked for UDP, so it tries a few ports.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for try := 1; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" {
			return nil, nil, err
		}
		if try == 20 {
			return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %w", err)
		}
	}
}

// Addr returns the address the server listens on, "127.0.0.1:port", for
// both UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Set replaces records: for each owner and type among rrs (master-file
// syntax, as for Start), the records of that type at that owner become
// exactly those given. Other types at the same owner are kept. A record
// that does not parse fails the test, so Set must be called from the test's
// goroutine.
func (s *Server) Set(rrs ...string) {
	s.t.Helper()
	type set struct {
		owner  string
		rrtype uint16
	}
	parsed := make(map[set][]dns.RR)
	var order []set
	for _, text := range rrs {
		rr, err := dns.NewRR(text)
		if err != nil {
			s.t.Fatalf("dnstest: %v", err)
		}
		if rr == nil { // blank or a comment
			continue
		}
		k := set{dns.CanonicalName(rr.Header().Name), rr.Header().Rrtype}
		if _, ok := parsed[k]; !ok {
			order = append(order, k)
		}
		parsed[k] = append(parsed[k], rr)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range order {
		var kept []dns.RR
		for _, rr := range s.data[k.owner] {
			if rr.Header().Rrtype != k.rrtype {
				kept = append(kept, rr)
			}
		}
		s.data[k.owner] = append(kept, parsed[k]...)
	}
}

// Remove deletes every record owned by name. Names below it are kept, so
// name may go on existing as an empty non-terminal.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, dns.CanonicalName(name))
}

// Fail makes queries for name, of any type, answer with rcode and nothing
// else: dns.RcodeServerFailure, dns.RcodeRefused, or any other.
func (s *Server) Fail(name string, rcode int) {
	s.setFault(name, func(f *fault) { f.rcode = rcode })
}

// Drop makes queries for name go unanswered, as if lost, so that clients
// time out.
func (s *Server) Drop(name string) {
	s.setFault(name, func(f *fault) { f.drop = true })
}

// Truncate makes UDP answers for name empty with the TC bit set, whatever
// their size, so that clients must ask again over TCP, where the full
// answer is given.
func (s *Server) Truncate(name string) {
	s.setFault(name, func(f *fault) { f.truncate = true })
}

// Delay makes the server wait d before answering (or failing, or dropping)
// a query for name. It adds to the other faults of name.
func (s *Server) Delay(name string, d time.Duration) {
	s.setFault(name, func(f *fault) { f.delay = d })
}

// Heal removes the faults of name: its queries are answered from the data
// again.
func (s *Server) Heal(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, dns.CanonicalName(name))
}

func (s *Server) setFault(name string, change func(*fault)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = dns.CanonicalName(name)
	f := s.faults[name]
	change(&f)
	s.faults[name] = f
}

// Queries returns how many queries for name and qtype reached the server,
// over UDP and TCP, answered or not. A query retried over TCP after
// truncation counts twice.
func (s *Server) Queries(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[query{dns.CanonicalName(name), qtype}]
}

// serveDNS answers one query.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		w.WriteMsg(m.SetRcode(req, dns.RcodeNotImplemented))
		return
	case len(req.Question) != 1:
		w.WriteMsg(m.SetRcode(req, dns.RcodeFormatError))
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)

	s.mu.Lock()
	s.queries[query{name, q.Qtype}]++
	f := s.faults[name]
	s.mu.Unlock()

	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-s.done:
			return
		}
	}
	if f.drop {
		return
	}

	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if f.rcode != dns.RcodeSuccess {
		m.Rcode = f.rcode
		w.WriteMsg(m)
		return
	}

	s.mu.Lock()
	m.Rcode, m.Answer, m.Ns = s.resolve(name, q.Qtype)
	s.mu.Unlock()

	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		m.SetEdns0(opt.UDPSize(), false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		if f.truncate {
			m.Truncated = true
			m.Answer, m.Ns = nil, nil
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// resolve computes the answer to name and qtype from the data. s.mu must
// be held.
func (s *Server) resolve(name string, qtype uint16) (rcode int, answer, authority []dns.RR) {
	for chased := 0; ; chased++ {
		rrs, exists := s.lookup(name)
		if !exists {
			return dns.RcodeNameError, answer, s.soa(name)
		}
		if cname := findType(rrs, dns.TypeCNAME); cname != nil && qtype != dns.TypeCNAME && qtype != dns.TypeANY {
			answer = append(answer, cname)
			target := dns.CanonicalName(cname.(*dns.CNAME).Target)
			if chased == maxChase || s.zone(target) != s.zone(name) {
				return dns.RcodeSuccess, answer, nil
			}
			name = target
			continue
		}
		n := len(answer)
		for _, rr := range rrs {
			if qtype == dns.TypeANY || rr.Header().Rrtype == qtype {
				answer = append(answer, rr)
			}
		}
		if len(answer) == n {
			return dns.RcodeSuccess, answer, s.soa(name)
		}
		return dns.RcodeSuccess, answer, nil
	}
}

// lookup returns the records at name, synthesized from a wildcard if need
// be, and whether name exists. s.mu must be held.
func (s *Server) lookup(name string) ([]dns.RR, bool) {
	if rrs := s.data[name]; len(rrs) > 0 {
		return rrs, true
	}
	if s.hasChildren(name) {
		return nil, true
	}
	// RFC 4592 §3.3.1: only the wildcard child of the closest encloser, the
	// nearest ancestor that exists, can answer.
	for p := parent(name); p != ""; p = parent(p) {
		if len(s.data[p]) == 0 && !s.hasChildren(p) {
			continue
		}
		wild := s.data[child("*", p)]
		if len(wild) == 0 {
			return nil, false
		}
		rrs := make([]dns.RR, len(wild))
		for i, rr := range wild {
			rrs[i] = dns.Copy(rr)
			rrs[i].Header().Name = name
		}
		return rrs, true
	}
	return nil, false
}

// hasChildren reports whether a name below name owns records. s.mu must be
// held.
func (s *Server) hasChildren(name string) bool {
	suffix := "." + name
	for owner, rrs := range s.data {
		if len(rrs) > 0 && (name == "." && owner != "." || strings.HasSuffix(owner, suffix)) {
			return true
		}
	}
	return false
}

// zone returns the closest name at or above name that owns an SOA, or ""
// if none does. s.mu must be held.
func (s *Server) zone(name string) string {
	for n := name; n != ""; n = parent(n) {
		if findType(s.data[n], dns.TypeSOA) != nil {
			return n
		}
	}
	return ""
}

// soa returns the SOA of the zone of name for the authority section of a
// negative answer, or nil if name is in no zone. s.mu must be held.
func (s *Server) soa(name string) []dns.RR {
	z := s.zone(name)
	if z == "" {
		return nil
	}
	return []dns.RR{findType(s.data[z], dns.TypeSOA)}
}

func findType(rrs []dns.RR, rrtype uint16) dns.RR {
	for _, rr := range rrs {
		if rr.Header().Rrtype == rrtype {
			return rr
		}
	}
	return nil
}

// child returns the name of label below name.
func child(label, name string) string {
	if name == "." {
		return label + "."
	}
	return label + "." + name
}

// parent returns the name one label up from name, "." above a top-level
// name and "" above the root.
func parent(name string) string {
	if name == "." {
		return ""
	}
	i := strings.IndexByte(name, '.')
	if i == len(name)-1 {
		return "."
	}
	return name[i+1:]
}
