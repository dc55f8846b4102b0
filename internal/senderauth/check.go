package senderauth

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"
)

// Config of a Checker.
type Config struct {
	SPF, DKIM, DMARC bool
	// Timeout bounds how long Finish waits for the checks once the message
	// has ended; lookups started at MAIL run while DATA streams.
	Timeout           time.Duration
	MaxDKIMSignatures int
	Discovery         string // DiscoveryTreeWalk (default) or DiscoveryPSL
	AuthservID        string
	// TrustUpstream lists the authserv-ids whose Authentication-Results
	// are copied, for clients the receiver trusts (Params.Trusted).
	TrustUpstream []string
	// MaxHeaderBytes caps the header block kept for From,
	// DKIM-Signature and Authentication-Results.
	MaxHeaderBytes int
	// CacheEntries caps each result cache (SPF results, DMARC policy
	// discovery), like dns.cache_entries caps the DNS cache; 0 disables
	// them. They are used only with a resolver that reports when its
	// answers expire (DNS with its cache on).
	CacheEntries int
	Observer     *Observer
}

// Checker checks messages; one is shared by all sessions of a receiver.
type Checker struct {
	cfg Config
	r   Resolver
	// spfResults and discoveries keep results for as long as every DNS
	// answer they came from is valid: on a hit the check asks nothing and
	// runs nothing (nil when disabled).
	spfResults  *lruCache[spfKey, SPFResult]
	discoveries *lruCache[discoveryKey, discovery]
}

// NewChecker returns a Checker asking r.
func NewChecker(cfg Config, r Resolver) *Checker {
	if cfg.Discovery == "" {
		cfg.Discovery = DiscoveryTreeWalk
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 1 << 20
	}
	c := &Checker{cfg: cfg, r: r}
	if er, ok := r.(expiryReporter); ok && er.reportsExpiry() && cfg.CacheEntries > 0 {
		c.spfResults = newLRUCache[spfKey, SPFResult](cfg.CacheEntries)
		c.discoveries = newLRUCache[discoveryKey, discovery](cfg.CacheEntries)
	}
	return c
}

// Params is what the session knows when MAIL arrives.
type Params struct {
	ClientIP net.IP
	Helo     string
	MailFrom string // "" for the null sender
	// Verify runs the checks here; false when the session is skipped
	// (trusted network, authenticated submission).
	Verify bool
	// Trusted marks a client in trusted_networks: only then are
	// Authentication-Results fields of TrustUpstream ids believed.
	Trusted bool
}

// Wanted says whether a message with these parameters needs a Check at
// all: verification, or upstream results to look for.
func (c *Checker) Wanted(p Params) bool {
	return p.Verify || (p.Trusted && len(c.cfg.TrustUpstream) > 0)
}

// Check is the check of one message. Start it at MAIL, Write the message
// bytes to it as they arrive, then Finish (or Abort) it exactly once.
type Check struct {
	c      *Checker
	p      Params
	start  time.Time
	ctx    context.Context
	cancel context.CancelFunc
	header headerTap

	spfDone chan struct{}
	spf     *SPFResult
	// dkimPending: DKIM is on, and whether the message needs a verifier
	// is known once its header is (most mail has no DKIM-Signature, and
	// then no verifier goroutine, no copy of the message and no second
	// parse of its header are spent on it).
	dkimPending bool
	dkim        *dkimRun
	once        sync.Once
}

// Start begins the check: SPF comes from the result cache, or runs at
// once in the background.
func (c *Checker) Start(p Params) *Check {
	ctx, cancel := context.WithCancel(context.Background())
	ck := &Check{c: c, p: p, start: time.Now(), ctx: ctx, cancel: cancel, header: headerTap{limit: c.cfg.MaxHeaderBytes}}
	if p.Verify && c.cfg.SPF {
		ck.startSPF()
	}
	ck.dkimPending = p.Verify && c.cfg.DKIM
	return ck
}

// alreadyDone is a channel that is always closed: SPF answered at Start.
var alreadyDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (ck *Check) startSPF() {
	cache := ck.c.spfResults
	key := spfKeyOf(ck.p)
	if cache != nil {
		if res, _, ok := cache.get(key); ok {
			ck.spf, ck.spfDone = &res, alreadyDone
			ck.c.cfg.Observer.resultCacheHit("spf")
			return
		}
	}
	ck.spfDone = make(chan struct{})
	go func() {
		defer close(ck.spfDone)
		ctx, exp := ck.ctx, (*expiry)(nil)
		if cache != nil {
			ctx, exp = trackExpiry(ctx)
		}
		ck.spf = checkSPF(ctx, ck.c.r, ck.p.ClientIP, ck.p.Helo, ck.p.MailFrom)
		if cache != nil && ck.spf.Result != "temperror" && ck.ctx.Err() == nil {
			cache.put(key, *ck.spf, exp.validUntil(cache.now()))
		}
	}()
}

// Write takes message bytes as received; it never blocks and never fails.
func (ck *Check) Write(p []byte) (int, error) {
	seen := len(ck.header.buf) // every byte before p, while dkimPending
	ck.header.Write(p)
	switch {
	case ck.dkim != nil:
		_, _ = ck.dkim.pipe.Write(p)
	case ck.dkimPending && ck.header.done():
		ck.startDKIMIfSigned(ck.header.buf[:seen], p)
	}
	return len(p), nil
}

// startDKIMIfSigned decides, once the header is known, whether the
// message needs a DKIM verifier, and if so hands it the bytes so far.
func (ck *Check) startDKIMIfSigned(before, p []byte) {
	ck.dkimPending = false
	if hdr := ck.header.fields(); len(hdr.dkimSignature) == 0 {
		return
	}
	ck.dkim = startDKIM(ck.ctx, ck.c.r, ck.c.cfg.MaxDKIMSignatures)
	_, _ = ck.dkim.pipe.Write(before)
	_, _ = ck.dkim.pipe.Write(p)
}

// Abort stops a check whose message did not arrive (RSET, a broken
// connection, a refused message).
func (ck *Check) Abort() {
	ck.once.Do(func() {
		ck.cancel()
		if ck.dkim != nil {
			ck.dkim.pipe.CloseWrite()
		}
	})
}

// Finish ends the message and returns the results, waiting at most
// Timeout: what has not finished by then is temperror. It returns nil
// when there is nothing to record (a skipped client without trusted
// upstream results).
func (ck *Check) Finish() *Results {
	var res *Results
	ck.once.Do(func() {
		defer ck.cancel()
		if ck.dkimPending {
			// The message ended inside its header.
			ck.startDKIMIfSigned(ck.header.buf, nil)
		}
		if ck.dkim != nil {
			ck.dkim.pipe.CloseWrite()
		}
		res = ck.results()
		if res != nil {
			ck.observe(res)
		}
	})
	return res
}

func (ck *Check) results() *Results {
	cfg := ck.c.cfg
	hdr := ck.header.fields()
	if ck.p.Trusted && len(cfg.TrustUpstream) > 0 {
		if up := upstreamResults(hdr.authenticationResults, cfg.TrustUpstream); up != nil {
			return up
		}
	}
	if !ck.p.Verify {
		return nil
	}
	// The budget's timer starts only if something has to wait.
	ctx := newBudget(ck.ctx, cfg.Timeout)
	defer ctx.stop()

	res := &Results{Source: SourceVerified}
	if ck.spfDone != nil {
		if waitFor(ctx, ck.spfDone) {
			res.SPF = ck.spf
		} else {
			res.SPF = &SPFResult{Result: "temperror", Scope: spfScope(ck.p.MailFrom), Domain: spfDomain(ck.p), Reason: "check timed out"}
		}
	}
	switch {
	case ck.dkim != nil:
		finished := waitFor(ctx, ck.dkim.done)
		res.DKIM = ck.dkim.results(hdr.dkimSignature, finished)
	case ck.p.Verify && cfg.DKIM:
		res.DKIM = &DKIMResults{Result: "none"} // unsigned
	}
	if cfg.DMARC {
		e := dmarcEvaluator{r: ck.c.r, discovery: cfg.Discovery, cache: ck.c.discoveries, obs: cfg.Observer}
		res.DMARC = e.evaluate(ctx, hdr.from, res.SPF, res.DKIM)
		if ck.header.overflow && res.DMARC.Result == "permerror" {
			res.DMARC.Reason += " (the header was cut at max_header_bytes)"
		}
	}
	res.AuthenticationResults = formatResults(cfg.AuthservID, res)
	return res
}

func spfScope(mailFrom string) string {
	if mailFrom == "" {
		return ScopeHelo
	}
	return ScopeMailFrom
}

func spfDomain(p Params) string {
	if p.MailFrom == "" {
		return strings.ToLower(strings.TrimSuffix(p.Helo, "."))
	}
	return domainOf(p.MailFrom)
}

func (ck *Check) observe(res *Results) {
	o := ck.c.cfg.Observer
	if res.SPF != nil {
		o.result("spf", res.SPF.Result)
	}
	if res.DKIM != nil {
		o.result("dkim", res.DKIM.Result)
	}
	if res.DMARC != nil {
		o.result("dmarc", res.DMARC.Result)
	}
	if res.DKIM != nil && res.DKIM.Ignored > 0 {
		o.limited("max_dkim_signatures")
	}
	if ck.header.overflow {
		o.limited("max_header_bytes")
	}
	o.duration(time.Since(ck.start))
}

// budget is the check's time budget once the message has ended: a context
// whose deadline is fixed at creation but whose timer starts only when
// something waits on Done. With every result already at hand (the warm
// path), a message costs no timer.
type budget struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	timed  context.Context // nil until Done is first asked for
	cancel context.CancelFunc
}

var _ context.Context = (*budget)(nil)

func newBudget(parent context.Context, timeout time.Duration) *budget {
	return &budget{parent: parent, deadline: time.Now().Add(timeout)}
}

func (b *budget) Deadline() (time.Time, bool) { return b.deadline, true }

func (b *budget) Value(key any) any { return b.parent.Value(key) }

func (b *budget) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timed == nil {
		b.timed, b.cancel = context.WithDeadline(b.parent, b.deadline)
	}
	return b.timed.Done()
}

// Err is the timed context's once Done was asked for; before that the same
// answer worked out from the parent and the clock.
func (b *budget) Err() error {
	b.mu.Lock()
	timed := b.timed
	b.mu.Unlock()
	switch {
	case timed != nil:
		return timed.Err()
	case b.parent.Err() != nil:
		return b.parent.Err()
	case !time.Now().Before(b.deadline):
		return context.DeadlineExceeded
	}
	return nil
}

// stop releases the timer, if one was started.
func (b *budget) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		b.cancel()
	}
}

// waitFor waits until done is closed (true) or the budget ends (false),
// without starting the budget's timer when done is closed already.
func waitFor(b *budget, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
	}
	select {
	case <-done:
		return true
	case <-b.Done():
		return false
	}
}
