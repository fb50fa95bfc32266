package loadtest

import (
	"fmt"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/dmarcd/dmarcd/internal/dnstest"
)

// DNSServer answers for a Corpus over UDP and TCP, as the recursive
// resolver next to a mail server would: the corpus's DMARC records,
// NXDOMAIN (with the SOA of "test." for negative caching) for every other
// name. It is internal/dnstest's approach without its testing.TB, so that
// a command can run it.
type DNSServer struct {
	corpus  *Corpus
	addr    string
	udp     *dns.Server
	tcp     *dns.Server
	queries atomic.Int64
}

// StartDNS listens on addr ("127.0.0.1:53" inside the benchmark's network
// namespace, "127.0.0.1:0" for a random port), UDP and TCP on the same
// port.
func StartDNS(addr string, c *Corpus) (*DNSServer, error) {
	pc, ln, err := dnstest.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	s := &DNSServer{corpus: c, addr: pc.LocalAddr().String()}
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serve)}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe() //nolint:errcheck // ends at Close
		<-started
	}
	return s, nil
}

// Addr is "127.0.0.1:port".
func (s *DNSServer) Addr() string { return s.addr }

// Queries is how many queries were answered so far.
func (s *DNSServer) Queries() int64 { return s.queries.Load() }

// Close stops both servers.
func (s *DNSServer) Close() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

func (s *DNSServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		w.WriteMsg(m.SetRcode(req, dns.RcodeFormatError))
		return
	}
	q := req.Question[0]
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	ttl := uint32(s.corpus.TTL.Seconds())
	txt, ok := s.corpus.TXT(q.Name)
	switch {
	case ok && (q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY):
		m.Answer = []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
			Txt: []string{txt},
		}}
	case !s.corpus.Exists(q.Name):
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa(ttl)}
	default: // NODATA
		m.Ns = []dns.RR{s.soa(ttl)}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	w.WriteMsg(m)
}

func (s *DNSServer) soa(ttl uint32) dns.RR {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: Suffix + ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  "ns." + Suffix + ".", Mbox: "hostmaster." + Suffix + ".",
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl,
	}
}
