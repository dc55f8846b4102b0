// Package dnstest runs real DNS servers on loopback for tests: UDP and TCP
// on one port of 127.0.0.1, answering from a handler or a small zone.
package dnstest

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server on 127.0.0.1 that counts the queries it gets.
type Server struct {
	// Addr is host:port, the same for UDP and TCP.
	Addr    string
	queries atomic.Int64
}

// Start serves h until the test ends.
func Start(t testing.TB, h dns.Handler) *Server {
	t.Helper()
	s := &Server{}
	counting := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		s.queries.Add(1)
		h.ServeDNS(w, q)
	})
	pc, l, err := listenBoth()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	servers := []*dns.Server{{PacketConn: pc, Handler: counting}, {Listener: l, Handler: counting}}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
	})
	return s
}

// listenBoth finds a port free for both UDP and TCP on 127.0.0.1: the
// free UDP port the kernel picks may be taken for TCP, so a few are tried.
func listenBoth() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, lastErr
}

// Queries is the number of queries served so far.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Zone answers TXT and A records by name (no trailing dot needed), with a
// TTL of 300 s; other names get NXDOMAIN with an SOA (negative TTL 60 s),
// names that exist without the asked type an empty answer.
type Zone struct {
	TXT map[string][]string
	A   map[string][]string
}

func (z Zone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	name := strings.ToLower(strings.TrimSuffix(q.Question[0].Name, "."))
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	switch q.Question[0].Qtype {
	case dns.TypeTXT:
		for _, txt := range z.TXT[name] {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: TXTChunks(txt)})
		}
	case dns.TypeA:
		for _, a := range z.A[name] {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(a)})
		}
	}
	_, hasTXT := z.TXT[name]
	_, hasA := z.A[name]
	if len(m.Answer) == 0 {
		if !hasTXT && !hasA {
			m.Rcode = dns.RcodeNameError
		}
		soa, _ := dns.NewRR(". 60 IN SOA ns.test. host.test. 1 3600 600 86400 60")
		m.Ns = append(m.Ns, soa)
	}
	_ = w.WriteMsg(m)
}

// TXTChunks splits a TXT string into the ≤255-byte strings of one record.
func TXTChunks(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
