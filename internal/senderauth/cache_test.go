package senderauth

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpreceiver/smtpreceiver/internal/senderauth/dnstest"
)

// TestLRUCache: hits, misses, expiry on a fake clock, the size cap
// (least recently used out first), and entries already expired not kept.
func TestLRUCache(t *testing.T) {
	clock := newFakeClock()
	c := newLRUCache[string, int](2)
	c.now = clock.now
	if _, _, ok := c.get("a"); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put("a", 1, clock.now().Add(10*time.Second))
	c.put("b", 2, clock.now().Add(20*time.Second))
	if v, exp, ok := c.get("a"); !ok || v != 1 || !exp.Equal(clock.now().Add(10*time.Second)) {
		t.Fatalf("get a = %v %v %v", v, exp, ok)
	}
	c.put("c", 3, clock.now().Add(time.Minute)) // evicts b, used less recently than a
	if _, _, ok := c.get("b"); ok || c.len() != 2 {
		t.Fatalf("b still cached or %d entries; cap is 2", c.len())
	}
	clock.advance(10 * time.Second)
	if _, _, ok := c.get("a"); ok {
		t.Fatal("a outlived its expiry")
	}
	if v, _, ok := c.get("c"); !ok || v != 3 {
		t.Fatal("c lost")
	}
	c.put("d", 4, clock.now()) // expired on arrival
	if _, _, ok := c.get("d"); ok {
		t.Fatal("an expired entry was kept")
	}
	c.put("c", 5, clock.now().Add(time.Second)) // replaced
	if v, _, _ := c.get("c"); v != 5 {
		t.Fatalf("c = %d after replacing it", v)
	}
}

// TestBudgetStartsNoTimerUntilWaitedOn: with the result already there the
// budget starts no timer; waiting on something unfinished starts it and
// ends at the deadline; a cancelled parent ends it without a timer.
func TestBudgetStartsNoTimerUntilWaitedOn(t *testing.T) {
	b := newBudget(context.Background(), time.Minute)
	if !waitFor(b, alreadyDone) || b.timed != nil || b.Err() != nil {
		t.Fatalf("waiting for a closed channel: timer %v, err %v", b.timed, b.Err())
	}
	b.stop()

	b = newBudget(context.Background(), 20*time.Millisecond)
	if waitFor(b, make(chan struct{})) {
		t.Fatal("an open channel counted as done")
	}
	if b.timed == nil || !errors.Is(b.Err(), context.DeadlineExceeded) {
		t.Fatalf("after the deadline: timer %v, err %v", b.timed, b.Err())
	}
	b.stop()

	parent, cancel := context.WithCancel(context.Background())
	b = newBudget(parent, time.Minute)
	cancel()
	if !errors.Is(b.Err(), context.Canceled) || b.timed != nil {
		t.Fatalf("cancelled parent: err %v, timer %v", b.Err(), b.timed)
	}
	if d, ok := b.Deadline(); !ok || d.IsZero() {
		t.Fatal("budget has no deadline")
	}
	b.stop()
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ttlZone is a DNS zone for the cache tests: TXT and A records with a TTL
// per name (300 s unless set), SERVFAIL for the names in fail, NXDOMAIN
// with a negative TTL of 60 s for the rest. Records can change while it
// serves.
type ttlZone struct {
	mu   sync.Mutex
	txt  map[string][]string
	a    map[string][]string
	ttl  map[string]uint32
	fail map[string]bool
}

func newTTLZone() *ttlZone {
	return &ttlZone{txt: map[string][]string{}, a: map[string][]string{}, ttl: map[string]uint32{}, fail: map[string]bool{}}
}

func (z *ttlZone) setTXT(name string, ttl uint32, txt ...string) *ttlZone {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt[name], z.ttl[name] = txt, ttl
	return z
}

func (z *ttlZone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	name := strings.ToLower(strings.TrimSuffix(q.Question[0].Name, "."))
	ttl := z.ttl[name]
	if ttl == 0 {
		ttl = 300
	}
	hdr := dns.RR_Header{Name: q.Question[0].Name, Rrtype: q.Question[0].Qtype, Class: dns.ClassINET, Ttl: ttl}
	switch {
	case z.fail[name]:
		m.Rcode = dns.RcodeServerFailure
	case q.Question[0].Qtype == dns.TypeTXT && z.txt[name] != nil:
		for _, s := range z.txt[name] {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: dnstest.TXTChunks(s)})
		}
	case q.Question[0].Qtype == dns.TypeA && z.a[name] != nil:
		for _, s := range z.a[name] {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(s)})
		}
	default:
		if z.txt[name] == nil && z.a[name] == nil {
			m.Rcode = dns.RcodeNameError
		}
		soa, _ := dns.NewRR("test. 60 IN SOA ns.test. host.test. 1 3600 600 86400 60")
		m.Ns = append(m.Ns, soa)
	}
	_ = w.WriteMsg(m)
}

// cacheTestZone: SPF pass/fail, an include with a short TTL, a syntax
// error, a SERVFAIL, a macro on the local part, HELO SPF, and DMARC
// records for the tree walk.
func cacheTestZone() *ttlZone {
	z := newTTLZone()
	z.setTXT("example.org", 300, "v=spf1 ip4:192.0.2.0/24 include:inc.example.org -all")
	z.setTXT("inc.example.org", 30, "v=spf1 ip4:203.0.113.0/24 ~all")
	z.setTXT("_dmarc.example.org", 120, "v=DMARC1; p=reject; sp=quarantine")
	z.setTXT("bad.example.org", 300, "v=spf1 ip4:bogus -all")
	z.setTXT("macro.example.org", 300, "v=spf1 exists:%{l}.allow.example.org -all")
	z.setTXT("mx.example.org", 300, "v=spf1 a:mx.example.org -all")
	z.setTXT("_dmarc.npd.example.org", 300, "v=DMARC1; p=none; np=reject")
	z.a["alice.allow.example.org"] = []string{"127.0.0.2"}
	z.a["mx.example.org"] = []string{"192.0.2.25"}
	z.fail["fail.example.org"] = true
	z.fail["_dmarc.fail.example.org"] = true
	return z
}

// cachedChecker is a Checker with its DNS and result caches on, all on
// clock; uncachedChecker has neither.
func cachedChecker(t *testing.T, server string, entries int, clock *fakeClock) *Checker {
	return cachedCheckerFor(t, server, entries, clock, DiscoveryTreeWalk)
}

func cachedCheckerFor(t *testing.T, server string, entries int, clock *fakeClock, discovery string) *Checker {
	t.Helper()
	d := newTestDNS(t, server, 1000, nil)
	t.Cleanup(d.Close)
	d.cache.now = clock.now
	cfg := allChecks(5 * time.Second)
	cfg.CacheEntries = entries
	cfg.Discovery = discovery
	c := NewChecker(cfg, d)
	if c.spfResults == nil || c.discoveries == nil {
		t.Fatal("result caches off with a caching resolver")
	}
	c.spfResults.now, c.discoveries.now = clock.now, clock.now
	return c
}

func uncachedChecker(t *testing.T, server, discovery string) *Checker {
	t.Helper()
	d := newTestDNS(t, server, 0, nil)
	t.Cleanup(d.Close)
	cfg := allChecks(5 * time.Second)
	cfg.Discovery = discovery
	c := NewChecker(cfg, d)
	if c.spfResults != nil || c.discoveries != nil {
		t.Fatal("result caches on without a DNS cache")
	}
	return c
}

type cacheCase struct {
	name          string
	ip, helo      string
	mailFrom, msg string
}

func (cc cacheCase) run(c *Checker) *Results {
	return deliver(c.Start(Params{ClientIP: net.ParseIP(cc.ip), Helo: cc.helo, MailFrom: cc.mailFrom, Verify: true}), cc.msg)
}

func fromMessage(from string) string {
	return "From: " + from + "\r\nSubject: cache test\r\n\r\nbody\r\n"
}

var cacheCases = []cacheCase{
	{"pass", "192.0.2.10", "mx.example.org", "alice@example.org", fromMessage("alice@example.org")},
	{"pass by include", "203.0.113.5", "mx.example.org", "alice@example.org", fromMessage("Alice <alice@example.org>")},
	{"fail", "198.51.100.7", "mx.example.org", "alice@example.org", fromMessage("alice@example.org")},
	{"subdomain sp", "192.0.2.10", "mx.example.org", "alice@example.org", fromMessage("x@sub.example.org")},
	{"no SPF, DMARC of the parent", "192.0.2.10", "mx.example.org", "x@nospf.example.org", fromMessage("x@nospf.example.org")},
	{"permerror", "192.0.2.10", "mx.example.org", "x@bad.example.org", fromMessage("x@bad.example.org")},
	{"temperror", "192.0.2.10", "mx.example.org", "x@fail.example.org", fromMessage("x@fail.example.org")},
	{"null sender, HELO", "192.0.2.25", "mx.example.org", "", fromMessage("mailer-daemon@mx.example.org")},
	{"macro, allowed local part", "192.0.2.10", "mx.example.org", "alice@macro.example.org", fromMessage("alice@macro.example.org")},
	{"macro, other local part", "192.0.2.10", "mx.example.org", "bob@macro.example.org", fromMessage("bob@macro.example.org")},
	{"np for a subdomain that does not exist", "192.0.2.10", "mx.example.org", "alice@example.org", fromMessage("x@ghost.npd.example.org")},
	{"From with two addresses", "192.0.2.10", "mx.example.org", "alice@example.org", fromMessage("a@example.org, b@example.org")},
}

// TestResultCachesMatchUncached: for every case the results from a cold
// cache, from the warm cache and from a receiver with no cache at all are
// the same, and the warm one asks the DNS server nothing, except after a
// temperror, which is never kept.
func TestResultCachesMatchUncached(t *testing.T) {
	zone := cacheTestZone()
	srv := dnstest.Start(t, zone)
	for _, discovery := range []string{DiscoveryTreeWalk, DiscoveryPSL} {
		for _, cc := range cacheCases {
			t.Run(discovery+"/"+cc.name, func(t *testing.T) { testResultCacheCase(t, srv, discovery, cc) })
		}
	}
}

func testResultCacheCase(t *testing.T, srv *dnstest.Server, discovery string, cc cacheCase) {
	clock := newFakeClock()
	cached := cachedCheckerFor(t, srv.Addr, 100, clock, discovery)
	want := cc.run(uncachedChecker(t, srv.Addr, discovery))
	cold := cc.run(cached)
	before := srv.Queries()
	warm := cc.run(cached)
	asked := srv.Queries() - before
	for name, got := range map[string]*Results{"cold cache": cold, "warm cache": warm} {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: results differ from the uncached ones\n got %s\nwant %s", name, got.AuthenticationResults, want.AuthenticationResults)
		}
	}
	t.Logf("%s", want.AuthenticationResults)
	temp := want.SPF.Result == "temperror" || want.DMARC.Result == "temperror"
	switch {
	case temp && asked == 0:
		t.Error("a temperror was answered from a cache")
	case !temp && asked != 0:
		t.Errorf("warm cache asked the server %d times", asked)
	}
}

// TestSPFResultCacheHitRunsNothing: a hit is there at Start, without a
// goroutine or a lookup.
func TestSPFResultCacheHitRunsNothing(t *testing.T) {
	srv := dnstest.Start(t, cacheTestZone())
	c := cachedChecker(t, srv.Addr, 100, newFakeClock())
	cc := cacheCases[0]
	cc.run(c)
	ck := c.Start(Params{ClientIP: net.ParseIP(cc.ip), Helo: cc.helo, MailFrom: cc.mailFrom, Verify: true})
	if ck.spfDone != alreadyDone || ck.spf == nil || ck.spf.Result != "pass" {
		t.Fatalf("warm SPF not taken at Start: %+v", ck.spf)
	}
	ck.Abort()
}

// TestResultCacheHitsObserved: each reuse is counted, by method.
func TestResultCacheHitsObserved(t *testing.T) {
	srv := dnstest.Start(t, cacheTestZone())
	c := cachedChecker(t, srv.Addr, 100, newFakeClock())
	var mu sync.Mutex
	hits := map[string]int{}
	c.cfg.Observer = &Observer{ResultCacheHit: func(m string) { mu.Lock(); hits[m]++; mu.Unlock() }}
	for range 3 {
		cacheCases[0].run(c)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits["spf"] != 2 || hits["dmarc"] != 2 || len(hits) != 2 {
		t.Fatalf("result cache hits %v, want spf 2, dmarc 2", hits)
	}
}

// TestResultCacheExpiry: a cached result lives as long as the shortest TTL
// of the answers it came from (the include's 30 s for SPF, _dmarc's 120 s
// for DMARC), and a changed record shows once it has expired.
func TestResultCacheExpiry(t *testing.T) {
	zone := cacheTestZone()
	srv := dnstest.Start(t, zone)
	clock := newFakeClock()
	c := cachedChecker(t, srv.Addr, 100, clock)
	cc := cacheCases[1] // pass by the include
	if res := cc.run(c); res.SPF.Result != "pass" {
		t.Fatalf("spf %s", res.SPF.Result)
	}
	zone.setTXT("inc.example.org", 30, "v=spf1 -all")
	zone.setTXT("_dmarc.example.org", 120, "v=DMARC1; p=none")

	clock.advance(29 * time.Second)
	before := srv.Queries()
	if res := cc.run(c); res.SPF.Result != "pass" || res.DMARC.Policy != "reject" || srv.Queries() != before {
		t.Fatalf("before expiry: spf %s, policy %s, %d queries", res.SPF.Result, res.DMARC.Policy, srv.Queries()-before)
	}
	clock.advance(time.Second) // the include has expired, nothing else
	res := cc.run(c)
	if res.SPF.Result != "fail" || res.DMARC.Policy != "reject" {
		t.Fatalf("after the include expired: spf %s, policy %s", res.SPF.Result, res.DMARC.Policy)
	}
	if n := srv.Queries() - before; n != 1 {
		t.Errorf("after the include expired %d queries, want 1 (the include)", n)
	}
	clock.advance(90 * time.Second) // 120 s: _dmarc.example.org has expired
	if res := cc.run(c); res.DMARC.Policy != "none" || res.DMARC.Result != "fail" {
		t.Fatalf("after _dmarc expired: dmarc %s policy %s", res.DMARC.Result, res.DMARC.Policy)
	}
}

// TestResultCacheNegative: a result built on NXDOMAIN answers is kept for
// their negative TTL (the SOA minimum, 60 s), not longer.
func TestResultCacheNegative(t *testing.T) {
	zone := cacheTestZone()
	srv := dnstest.Start(t, zone)
	clock := newFakeClock()
	c := cachedChecker(t, srv.Addr, 100, clock)
	cc := cacheCases[4] // no SPF record
	if res := cc.run(c); res.SPF.Result != "none" {
		t.Fatalf("spf %s", res.SPF.Result)
	}
	zone.setTXT("nospf.example.org", 300, "v=spf1 -all")
	clock.advance(59 * time.Second)
	if res := cc.run(c); res.SPF.Result != "none" {
		t.Fatalf("within the negative TTL: spf %s", res.SPF.Result)
	}
	clock.advance(time.Second)
	if res := cc.run(c); res.SPF.Result != "fail" {
		t.Fatalf("after the negative TTL: spf %s", res.SPF.Result)
	}
}

// TestResultCacheTemperrorNotKept: SERVFAIL makes temperror, which is
// asked again every time and never cached.
func TestResultCacheTemperrorNotKept(t *testing.T) {
	srv := dnstest.Start(t, cacheTestZone())
	c := cachedChecker(t, srv.Addr, 100, newFakeClock())
	cc := cacheCases[6]
	for i := range 3 {
		before := srv.Queries()
		res := cc.run(c)
		if res.SPF.Result != "temperror" || res.DMARC.Result != "temperror" {
			t.Fatalf("run %d: spf %s dmarc %s", i, res.SPF.Result, res.DMARC.Result)
		}
		if srv.Queries() == before {
			t.Fatalf("run %d: temperror answered without asking", i)
		}
	}
	if _, _, ok := c.spfResults.get(spfKeyOf(Params{ClientIP: net.ParseIP(cc.ip), Helo: cc.helo, MailFrom: cc.mailFrom})); ok {
		t.Error("SPF temperror cached")
	}
	if _, _, ok := c.discoveries.get(discoveryKey{DiscoveryTreeWalk, "fail.example.org"}); ok {
		t.Error("failed discovery cached")
	}
}

// TestResultCacheSizeCap: each result cache holds at most CacheEntries,
// the least recently used going first.
func TestResultCacheSizeCap(t *testing.T) {
	srv := dnstest.Start(t, cacheTestZone())
	c := cachedChecker(t, srv.Addr, 2, newFakeClock())
	senders := []string{"a@example.org", "b@example.org", "c@example.org"}
	for _, s := range senders {
		cacheCase{ip: "192.0.2.10", helo: "mx.example.org", mailFrom: s, msg: fromMessage(s)}.run(c)
	}
	if n := c.spfResults.len(); n != 2 {
		t.Fatalf("SPF cache holds %d results, cap 2", n)
	}
	if _, _, ok := c.spfResults.get(spfKeyOf(Params{ClientIP: net.ParseIP("192.0.2.10"), Helo: "mx.example.org", MailFrom: senders[0]})); ok {
		t.Error("the least recently used SPF result was kept")
	}
	for _, d := range []string{"a.example.org", "b.example.org", "c.example.org"} {
		cacheCase{ip: "192.0.2.10", helo: "mx.example.org", mailFrom: "x@example.org", msg: fromMessage("x@" + d)}.run(c)
	}
	if n := c.discoveries.len(); n != 2 {
		t.Fatalf("discovery cache holds %d results, cap 2", n)
	}
}

// TestResultCachesOff: cache_entries 0, or a resolver that cannot say when
// its answers expire, means no result cache.
func TestResultCachesOff(t *testing.T) {
	srv := dnstest.Start(t, cacheTestZone())
	d := newTestDNS(t, srv.Addr, 100, nil)
	defer d.Close()
	cfg := allChecks(time.Second)
	if c := NewChecker(cfg, d); c.spfResults != nil || c.discoveries != nil {
		t.Error("result caches on with CacheEntries 0")
	}
	cfg.CacheEntries = 100
	if c := NewChecker(cfg, newFakeDNS()); c.spfResults != nil || c.discoveries != nil {
		t.Error("result caches on with a resolver that reports no expiry")
	}
}
