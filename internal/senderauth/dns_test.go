package senderauth

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpreceiver/smtpreceiver/internal/senderauth/dnstest"
)

// zoneHandler answers from a small test zone.
func zoneHandler(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	name := q.Question[0].Name
	soa, _ := dns.NewRR("example.org. 300 IN SOA ns.example.org. host.example.org. 1 3600 600 86400 120")
	switch {
	case name == "txt.example.org." && q.Question[0].Qtype == dns.TypeTXT:
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{"v=spf1 ", "-all"}})
	case name == "big.example.org.":
		_, isUDP := w.RemoteAddr().(*net.UDPAddr)
		if isUDP {
			m.Truncated = true
		} else {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{strings.Repeat("k", 255), strings.Repeat("k", 255)}})
		}
	case name == "fail.example.org.":
		m.Rcode = dns.RcodeServerFailure
	case name == "mx.example.org." && q.Question[0].Qtype == dns.TypeMX:
		m.Answer = append(m.Answer, &dns.MX{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 300}, Preference: 10, Mx: "in.example.org."})
	case name == "mx.example.org." && q.Question[0].Qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP("192.0.2.25")})
	case name == "10.2.0.192.in-addr.arpa.":
		m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 300}, Ptr: "mx.example.org."})
	case strings.HasSuffix(name, "example.org.") && strings.HasPrefix(name, "n"):
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{"x"}})
	case name == "empty.example.org.", name == "txt.example.org.", name == "mx.example.org.":
		m.Ns = append(m.Ns, soa) // exists, no record of that type
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, soa)
	}
	_ = w.WriteMsg(m)
}

func newTestDNS(t *testing.T, server string, entries int, obs *Observer) *DNS {
	t.Helper()
	d, err := NewDNS(DNSConfig{Server: server, Timeout: 300 * time.Millisecond, CacheEntries: entries, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDNSAnswers(t *testing.T) {
	srv := dnstest.Start(t, dns.HandlerFunc(zoneHandler))
	d := newTestDNS(t, srv.Addr, 100, nil)
	ctx := context.Background()

	txt, err := d.LookupTXT(ctx, "TXT.example.org")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Fatalf("TXT: %q %v (chunks must be joined)", txt, err)
	}
	big, err := d.LookupTXT(ctx, "big.example.org")
	if err != nil || len(big) != 1 || len(big[0]) != 510 {
		t.Fatalf("truncated UDP answer must be retried over TCP: %d records, %v", len(big), err)
	}
	mx, err := d.LookupMX(ctx, "mx.example.org")
	if err != nil || len(mx) != 1 || mx[0].Host != "in.example.org." || mx[0].Pref != 10 {
		t.Fatalf("MX: %v %v", mx, err)
	}
	ips, err := d.LookupIPAddr(ctx, "mx.example.org")
	if err != nil || len(ips) != 1 || !ips[0].IP.Equal(net.ParseIP("192.0.2.25")) {
		t.Fatalf("A/AAAA: %v %v", ips, err)
	}
	names, err := d.LookupAddr(ctx, "192.0.2.10")
	if err != nil || len(names) != 1 || names[0] != "mx.example.org." {
		t.Fatalf("PTR: %v %v", names, err)
	}
	for _, name := range []string{"missing.example.org", "empty.example.org"} {
		if _, err := d.LookupTXT(ctx, name); !isNotFound(err) || isTemporary(err) {
			t.Fatalf("%s: %v, want not found", name, err)
		}
	}
	_, err = d.LookupTXT(ctx, "fail.example.org")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTemporary || isNotFound(err) {
		t.Fatalf("SERVFAIL: %v, want a temporary *net.DNSError", err)
	}
}

func TestDNSCache(t *testing.T) {
	srv := dnstest.Start(t, dns.HandlerFunc(zoneHandler))
	var hits, asked atomic.Int64
	obs := &Observer{CacheHit: func(string) { hits.Add(1) }, DNSQuery: func(string, string) { asked.Add(1) }}
	d := newTestDNS(t, srv.Addr, 2, obs)
	ctx := context.Background()
	lookup := func(name string) {
		t.Helper()
		if _, err := d.LookupTXT(ctx, name); err != nil && !isNotFound(err) && !isTemporary(err) {
			t.Fatal(err)
		}
	}
	lookup("txt.example.org")
	lookup("txt.example.org")
	lookup("missing.example.org") // negative answer, cached
	lookup("missing.example.org")
	if srv.Queries() != 2 || hits.Load() != 2 || asked.Load() != 2 {
		t.Fatalf("server saw %d queries, %d cache hits, %d counted; want 2, 2, 2", srv.Queries(), hits.Load(), asked.Load())
	}
	lookup("fail.example.org") // SERVFAIL is not cached
	lookup("fail.example.org")
	if srv.Queries() != 4 {
		t.Fatalf("SERVFAIL cached: %d queries", srv.Queries())
	}
	lookup("n1.example.org") // a third entry evicts the least recently used
	if d.cache.len() != 2 {
		t.Fatalf("cache holds %d entries, cap is 2", d.cache.len())
	}
	lookup("txt.example.org")
	if srv.Queries() != 6 {
		t.Fatalf("evicted entry answered from cache: %d queries", srv.Queries())
	}
}

func TestDNSCacheExpiry(t *testing.T) {
	c := newLRUCache[string, answer](10)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	c.put("k", answer{}, now.Add(30*time.Second))
	if _, _, ok := c.get("k"); !ok {
		t.Fatal("fresh entry missing")
	}
	now = now.Add(30 * time.Second)
	if _, _, ok := c.get("k"); ok {
		t.Fatal("entry outlived its TTL")
	}
}

// TestDNSCollapsesIdenticalQueries: concurrent lookups of one name while
// the server is slow reach the server once.
func TestDNSCollapsesIdenticalQueries(t *testing.T) {
	release := make(chan struct{})
	srv := dnstest.Start(t, dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		<-release
		zoneHandler(w, q)
	}))
	d := newTestDNS(t, srv.Addr, 100, nil)
	d.timeout = 10 * time.Second
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.LookupTXT(context.Background(), "txt.example.org")
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the lookups pile up behind the first
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Queries(); n != 1 {
		t.Fatalf("server saw %d queries, want 1", n)
	}
}

// TestDNSTimeout: a server that never answers gives a timeout error, for
// the per-query timeout and for a caller whose context ends first.
func TestDNSTimeout(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var queries atomic.Int64
	obs := &Observer{DNSQuery: func(qtype, outcome string) {
		if qtype == "TXT" && outcome == "timeout" {
			queries.Add(1)
		}
	}}
	d := newTestDNS(t, silent.LocalAddr().String(), 100, obs)
	_, err = d.LookupTXT(context.Background(), "example.org")
	if !isTemporary(err) || !err.(*net.DNSError).IsTimeout {
		t.Fatalf("got %v, want a timeout", err)
	}
	if queries.Load() != 1 {
		t.Fatalf("timeout counted %d times", queries.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = d.LookupTXT(ctx, "example.net")
	if !isTemporary(err) {
		t.Fatalf("got %v, want a temporary error", err)
	}
}

func TestNewDNSConfig(t *testing.T) {
	if _, err := NewDNS(DNSConfig{Server: "127.0.0.1"}); err == nil {
		t.Fatal("a server without a port must be refused")
	}
}

// TestDNSCloseEndsQueriesInFlight: a receiver shutting down does not wait
// for the per-query timeout of a server that never answers.
func TestDNSCloseEndsQueriesInFlight(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	d, err := NewDNS(DNSConfig{Server: silent.LocalAddr().String(), Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := d.LookupTXT(context.Background(), "example.org")
		done <- err
	}()
	buf := make([]byte, 512)
	if _, _, err := silent.ReadFrom(buf); err != nil { // the query is on the wire
		t.Fatal(err)
	}
	d.Close()
	if err := <-done; !isTemporary(err) {
		t.Fatalf("got %v, want a temporary error", err)
	}
	if _, err := d.LookupTXT(context.Background(), "example.net"); !isTemporary(err) {
		t.Fatalf("after Close: %v", err)
	}
}
