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
	Observer       *Observer
}

// Checker checks messages; one is shared by all sessions of a receiver.
type Checker struct {
	cfg Config
	r   Resolver
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
	return &Checker{cfg: cfg, r: r}
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

// Start begins the check: SPF runs at once, in the background.
func (c *Checker) Start(p Params) *Check {
	ctx, cancel := context.WithCancel(context.Background())
	ck := &Check{c: c, p: p, start: time.Now(), ctx: ctx, cancel: cancel, header: headerTap{limit: c.cfg.MaxHeaderBytes}}
	if p.Verify && c.cfg.SPF {
		ck.spfDone = make(chan struct{})
		go func() {
			defer close(ck.spfDone)
			ck.spf = checkSPF(ctx, c.r, p.ClientIP, p.Helo, p.MailFrom)
		}()
	}
	ck.dkimPending = p.Verify && c.cfg.DKIM
	return ck
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
	if hdr := ck.header.fields(); !hdr.Has("DKIM-Signature") {
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
		if up := upstreamResults(hdr.Values("Authentication-Results"), cfg.TrustUpstream); up != nil {
			return up
		}
	}
	if !ck.p.Verify {
		return nil
	}
	ctx, cancel := context.WithTimeout(ck.ctx, cfg.Timeout)
	defer cancel()

	res := &Results{Source: SourceVerified}
	if ck.spfDone != nil {
		select {
		case <-ck.spfDone:
			res.SPF = ck.spf
		case <-ctx.Done():
			res.SPF = &SPFResult{Result: "temperror", Scope: spfScope(ck.p.MailFrom), Domain: spfDomain(ck.p), Reason: "check timed out"}
		}
	}
	switch {
	case ck.dkim != nil:
		finished := true
		select {
		case <-ck.dkim.done:
		case <-ctx.Done():
			finished = false
		}
		res.DKIM = ck.dkim.results(hdr.Values("DKIM-Signature"), finished)
	case ck.p.Verify && cfg.DKIM:
		res.DKIM = &DKIMResults{Result: "none"} // unsigned
	}
	if cfg.DMARC {
		e := dmarcEvaluator{r: ck.c.r, discovery: cfg.Discovery}
		res.DMARC = e.evaluate(ctx, hdr.Values("From"), res.SPF, res.DKIM)
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
