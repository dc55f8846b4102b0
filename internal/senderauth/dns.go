package senderauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// DNSConfig configures the resolver shared by every session of a receiver.
type DNSConfig struct {
	// Server is host:port of the recursive resolver to ask; empty means
	// the name servers of /etc/resolv.conf.
	Server string
	// Timeout bounds one query (each server, UDP and TCP retry included).
	Timeout time.Duration
	// CacheEntries caps the cache; 0 disables it.
	CacheEntries int
	// Observer counts queries and cache hits; nil counts nothing.
	Observer *Observer
}

// Limits of what is cached, so one odd answer cannot pin an entry forever
// or hammer a broken domain.
const (
	maxPositiveTTL  = time.Hour
	maxNegativeTTL  = 15 * time.Minute
	defaultNegative = time.Minute // NXDOMAIN/NODATA without an SOA
	resolvConf      = "/etc/resolv.conf"
)

// DNS is a caching stub resolver: UDP with a TCP retry when the answer is
// truncated, a per-query timeout, a TTL-honouring cache with negative
// entries and a size cap, and concurrent identical queries collapsed into
// one. It implements Resolver.
type DNS struct {
	servers []string
	timeout time.Duration
	udp     *dns.Client
	tcp     *dns.Client
	cache   *lruCache[string, answer] // nil when disabled
	flight  singleflight.Group
	obs     *Observer

	// base is the parent of every exchange; Close cancels it and waits
	// for the exchanges to return, so no query outlives the receiver.
	base     context.Context
	stop     context.CancelFunc
	mu       sync.Mutex // guards closed and inFlight.Add against Close
	closed   bool
	inFlight sync.WaitGroup
}

var _ Resolver = (*DNS)(nil)

// NewDNS builds the resolver. An empty Server reads /etc/resolv.conf.
func NewDNS(cfg DNSConfig) (*DNS, error) {
	servers, err := dnsServers(cfg.Server)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	d := &DNS{
		servers: servers,
		timeout: cfg.Timeout,
		udp:     &dns.Client{Net: "udp", Timeout: cfg.Timeout, UDPSize: dns.DefaultMsgSize},
		tcp:     &dns.Client{Net: "tcp", Timeout: cfg.Timeout},
		obs:     cfg.Observer,
	}
	d.base, d.stop = context.WithCancel(context.Background())
	if cfg.CacheEntries > 0 {
		d.cache = newLRUCache[string, answer](cfg.CacheEntries)
	}
	return d, nil
}

func dnsServers(server string) ([]string, error) {
	if server != "" {
		if _, _, err := net.SplitHostPort(server); err != nil {
			return nil, fmt.Errorf("dns server %q is not host:port: %w", server, err)
		}
		return []string{server}, nil
	}
	conf, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading the system resolver configuration: %w", err)
	}
	if len(conf.Servers) == 0 {
		return nil, fmt.Errorf("%s names no name server", resolvConf)
	}
	out := make([]string, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		out = append(out, net.JoinHostPort(s, conf.Port))
	}
	return out, nil
}

// LookupTXT returns one string per TXT record, its chunks joined.
func (d *DNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := d.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

func (d *DNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := d.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, rr := range rrs {
		if m, ok := rr.(*dns.MX); ok {
			out = append(out, &net.MX{Host: m.Mx, Pref: m.Preference})
		}
	}
	return out, nil
}

// LookupIPAddr asks for A and AAAA; it is "not found" only when both are.
func (d *DNS) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	var out []net.IPAddr
	var errs []error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := d.query(ctx, host, qtype)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, net.IPAddr{IP: a.A})
			case *dns.AAAA:
				out = append(out, net.IPAddr{IP: a.AAAA})
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, err := range errs {
		if !isNotFound(err) {
			return nil, err // a failure outweighs an empty answer
		}
	}
	return nil, notFound(host)
}

func (d *DNS) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: addr}
	}
	rrs, err := d.query(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			out = append(out, p.Ptr)
		}
	}
	return out, nil
}

// Close ends the queries in flight and waits for them; later lookups
// fail as temporary errors.
func (d *DNS) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.stop()
	d.inFlight.Wait()
}

// enter registers an exchange unless the resolver is closed.
func (d *DNS) enter() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.inFlight.Add(1)
	return true
}

// answer is what a query leaves in the cache: records, or a not-found.
type answer struct {
	rrs     []dns.RR
	err     error // nil or a not-found *net.DNSError
	ttl     time.Duration
	expires time.Time // when the answer is no longer valid; zero: not cached
}

// reportsExpiry: with its cache on, every answer the resolver hands out
// reports when it expires to a trackExpiry context (a result cache may
// then keep what was computed from it). Without the cache nothing may be
// reused.
func (d *DNS) reportsExpiry() bool { return d.cache != nil }

func (d *DNS) now() time.Time {
	if d.cache != nil {
		return d.cache.now()
	}
	return time.Now()
}

// query answers from the cache, or asks the servers once for all callers
// waiting on the same name and type. The exchange runs on its own
// deadline so that one caller giving up does not fail the others.
func (d *DNS) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	fqdn := dns.Fqdn(strings.ToLower(name))
	key := dns.TypeToString[qtype] + " " + fqdn
	if d.cache != nil {
		if a, expires, ok := d.cache.get(key); ok {
			d.obs.cacheHit(dns.TypeToString[qtype])
			noteExpiry(ctx, expires)
			return a.rrs, a.err
		}
	}
	if _, ok := dns.IsDomainName(fqdn); !ok || len(fqdn) > 254 {
		// Not a name: the same answer at any time, no expiry to note.
		return nil, notFound(name)
	}
	ch := d.flight.DoChan(key, func() (any, error) {
		if !d.enter() {
			return nil, &net.DNSError{Err: "resolver closed", Name: name, IsTemporary: true}
		}
		defer d.inFlight.Done()
		qctx, cancel := context.WithTimeout(d.base, d.timeout)
		defer cancel()
		a, err := d.exchange(qctx, fqdn, qtype)
		d.obs.dnsQuery(dns.TypeToString[qtype], outcomeOf(err, a))
		if err == nil && d.cache != nil && a.ttl > 0 {
			a.expires = d.now().Add(a.ttl)
			d.cache.put(key, a, a.expires)
		}
		return a, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			noteExpiry(ctx, time.Time{})
			return nil, res.Err
		}
		a := res.Val.(answer)
		noteExpiry(ctx, a.expires)
		return a.rrs, a.err
	case <-ctx.Done():
		noteExpiry(ctx, time.Time{})
		return nil, &net.DNSError{Err: ctx.Err().Error(), Name: name, IsTimeout: true}
	}
}

// exchange asks each server in turn until one answers. A transport or
// server failure is returned as a temporary *net.DNSError.
func (d *DNS) exchange(ctx context.Context, fqdn string, qtype uint16) (answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qtype)
	m.RecursionDesired = true
	m.SetEdns0(dns.DefaultMsgSize, false)
	var lastErr error
	for _, server := range d.servers {
		resp, err := exchangeOnce(ctx, d.udp, m, server)
		if err == nil && resp.Truncated {
			resp, err = exchangeOnce(ctx, d.tcp, m, server)
		}
		if err != nil {
			lastErr = transportError(err, fqdn, server)
			continue
		}
		return answerOf(resp, fqdn, qtype, server)
	}
	return answer{}, lastErr
}

// exchangeOnce sends one query on a connection of its own, closed as soon
// as ctx ends: miekg/dns only honours a context's deadline, and a
// cancelled query (a receiver shutting down) must not wait for it.
func exchangeOnce(ctx context.Context, c *dns.Client, m *dns.Msg, server string) (*dns.Msg, error) {
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return resp, err
}

func transportError(err error, name, server string) error {
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	return &net.DNSError{Err: err.Error(), Name: name, Server: server, IsTimeout: timeout, IsTemporary: !timeout}
}

// answerOf reads a response: records of the asked type (CNAMEs followed
// by the recursive server are in the same answer section), a not-found
// with the negative TTL of the SOA, or a temporary failure.
func answerOf(resp *dns.Msg, fqdn string, qtype uint16, server string) (answer, error) {
	switch resp.Rcode {
	case dns.RcodeSuccess:
		var rrs []dns.RR
		ttl := maxPositiveTTL
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype == qtype {
				rrs = append(rrs, rr)
				ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
			}
		}
		if len(rrs) > 0 {
			return answer{rrs: rrs, ttl: ttl}, nil
		}
		return answer{err: notFoundAt(fqdn, server), ttl: negativeTTL(resp)}, nil
	case dns.RcodeNameError:
		return answer{err: notFoundAt(fqdn, server), ttl: negativeTTL(resp)}, nil
	default:
		return answer{}, &net.DNSError{Err: "server failure: " + dns.RcodeToString[resp.Rcode], Name: fqdn, Server: server, IsTemporary: true}
	}
}

// negativeTTL is the SOA minimum (RFC 2308), capped.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Minttl, soa.Hdr.Ttl))*time.Second, maxNegativeTTL)
		}
	}
	return defaultNegative
}

func notFound(name string) error { return notFoundAt(name, "") }

func notFoundAt(name, server string) error {
	return &net.DNSError{Err: "no such host", Name: name, Server: server, IsNotFound: true}
}

// outcomeOf names a query's outcome for the self-metrics.
func outcomeOf(err error, a answer) string {
	var de *net.DNSError
	switch {
	case err == nil && a.err == nil:
		return "success"
	case err == nil:
		return "not_found"
	case errors.As(err, &de) && de.IsTimeout:
		return "timeout"
	default:
		return "error"
	}
}
