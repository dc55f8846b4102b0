package senderauth

import (
	"time"
)

// Results of one message. Result fields hold RFC 8601 result tokens
// verbatim (pass, fail, softfail, neutral, none, policy, temperror,
// permerror).
type Results struct {
	// Source is "verified" (checked here) or "upstream" (copied from a
	// trusted relay's Authentication-Results).
	Source string
	SPF    *SPFResult   // nil when SPF was not checked
	DKIM   *DKIMResults // nil when DKIM was not checked
	DMARC  *DMARCResult // nil when DMARC was not checked
	// AuthenticationResults is the RFC 8601 field value a person can read:
	// ours for verified results, the trusted relay's for upstream ones.
	AuthenticationResults string
}

// Sources of Results.
const (
	SourceVerified = "verified"
	SourceUpstream = "upstream"
)

// SPFResult is the SPF check of the MAIL FROM identity, or of the HELO
// identity for the null sender.
type SPFResult struct {
	Result string
	Domain string
	Scope  string // "mfrom" or "helo"
	Reason string
}

// SPF scopes (RFC 7208 section 2.4 and 2.3).
const (
	ScopeMailFrom = "mfrom"
	ScopeHelo     = "helo"
)

// DKIMResults is the summary over all signatures and each signature.
type DKIMResults struct {
	// Result is pass if any signature passed, none if there was none,
	// otherwise the first signature's result.
	Result     string
	Signatures []DKIMSignature
	// Ignored counts signatures past max_dkim_signatures, not verified.
	Ignored int
}

// DKIMSignature is the verification of one DKIM-Signature field.
type DKIMSignature struct {
	Result     string
	Domain     string // d=
	Selector   string // s=
	Algorithm  string // a=
	Identifier string // i= (or @d)
	Reason     string
}

// PassingDomains lists the d= of the signatures that passed, in order,
// without repeats.
func (d *DKIMResults) PassingDomains() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range d.Signatures {
		if s.Result == "pass" && !seen[s.Domain] {
			seen[s.Domain] = true
			out = append(out, s.Domain)
		}
	}
	return out
}

// DMARCResult is the DMARC evaluation of the From domain.
type DMARCResult struct {
	Result     string // none, pass, fail, temperror, permerror
	FromDomain string
	// Policy is the policy that applies to this From domain (none,
	// quarantine, reject): p, sp or np by where the record was found and
	// whether the domain exists; "none" while the owner is testing (t=y).
	// Empty when no record was found.
	Policy       string
	PolicyDomain string // where the record was found
	OrgDomain    string // organizational domain of the From domain
	P, SP, NP    string // the record's tags as published ("" when absent)
	ADKIM, ASPF  string // alignment modes: "r" or "s"
	Testing      bool   // t=y
	Discovery    string // "treewalk" or "psl"
	AlignedSPF   string // the SPF domain when it passed and is aligned
	AlignedDKIM  []string
	Reason       string
}

// Observer receives the counts the receiver turns into self-metrics. Any
// nil field counts nothing.
type Observer struct {
	DNSQuery func(qtype, outcome string)
	CacheHit func(qtype string)
	// ResultCacheHit counts a result reused from a result cache: "spf"
	// (an SPF result) or "dmarc" (a DMARC policy discovery).
	ResultCacheHit func(method string)
	Result         func(method, result string)
	Duration       func(d time.Duration)
	// Limited counts a message that hit a limit: "max_dkim_signatures"
	// (signatures past it were not verified) or "max_header_bytes" (the
	// header was cut there for From, DKIM-Signature and
	// Authentication-Results).
	Limited func(limit string)
}

func (o *Observer) dnsQuery(qtype, outcome string) {
	if o != nil && o.DNSQuery != nil {
		o.DNSQuery(qtype, outcome)
	}
}

func (o *Observer) cacheHit(qtype string) {
	if o != nil && o.CacheHit != nil {
		o.CacheHit(qtype)
	}
}

func (o *Observer) resultCacheHit(method string) {
	if o != nil && o.ResultCacheHit != nil {
		o.ResultCacheHit(method)
	}
}

func (o *Observer) result(method, result string) {
	if o != nil && o.Result != nil {
		o.Result(method, result)
	}
}

func (o *Observer) limited(limit string) {
	if o != nil && o.Limited != nil {
		o.Limited(limit)
	}
}

func (o *Observer) duration(d time.Duration) {
	if o != nil && o.Duration != nil {
		o.Duration(d)
	}
}
