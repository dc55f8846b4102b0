package senderauth

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Policy discovery methods.
const (
	DiscoveryTreeWalk = "treewalk" // RFC 9989 section 4.10
	DiscoveryPSL      = "psl"      // RFC 7489 section 6.6.3
)

// maxWalkQueries bounds the RFC 9989 tree walk: the domain itself, then at
// most seven labels and up.
const maxWalkQueries = 8

// policyRecord is a DMARC record with the RFC 9989 tags go-msgauth does not
// know (psd, np, t).
type policyRecord struct {
	domain      string
	p, sp, np   string
	adkim, aspf string
	psd         string // "y", "n" or ""
	testing     bool
}

// parsePolicyRecord reads one TXT string. It returns nil for a string that
// is not a DMARC record. The removed RFC 7489 tags (pct, rf, ri) are
// dropped before go-msgauth validates the rest, and a missing or invalid p
// reads as p=none (RFC 9989 section 4.7), so a sloppy record still counts.
func parsePolicyRecord(domain, txt string) *policyRecord {
	tags, ok := dmarcTags(txt)
	if !ok {
		return nil
	}
	rec := &policyRecord{domain: domain, adkim: "r", aspf: "r", p: "none"}
	known := []string{"v=DMARC1"}
	for _, k := range []string{"p", "sp", "adkim", "aspf"} {
		if v, ok := tags[k]; ok {
			known = append(known, k+"="+v)
		}
	}
	if _, ok := tags["p"]; !ok {
		known = append(known, "p=none")
	}
	if parsed, err := dmarc.Parse(strings.Join(known, "; ")); err == nil {
		rec.p, rec.sp = string(parsed.Policy), string(parsed.SubdomainPolicy)
		rec.adkim, rec.aspf = string(parsed.DKIMAlignment), string(parsed.SPFAlignment)
	} else {
		rec.sp, rec.adkim, rec.aspf = validPolicy(tags["sp"]), validMode(tags["adkim"]), validMode(tags["aspf"])
		rec.p = validPolicy(tags["p"])
		if rec.p == "" {
			rec.p = "none"
		}
	}
	rec.np = validPolicy(tags["np"])
	switch strings.ToLower(tags["psd"]) {
	case "y":
		rec.psd = "y"
	case "n":
		rec.psd = "n"
	}
	rec.testing = strings.EqualFold(tags["t"], "y")
	return rec
}

// parsedPolicies keeps parsed records by domain and TXT string. With a
// warm DNS cache every message from a domain brings the same strings, and
// parsing them again (go-msgauth validates the tags with regular
// expressions) was the larger part of DMARC's cost. Records are never
// changed after parsing, so one is shared by all checks.
// Only records of a sane size are kept (maxMemoPolicy): a zone may serve
// TXT strings of tens of kilobytes, and 4096 of those would hold hundreds
// of megabytes.
var parsedPolicies = &memo[[2]string, *policyRecord]{max: 4096}

// maxMemoPolicy bounds the domain and record kept by parsedPolicies; real
// DMARC records are a few hundred bytes.
const maxMemoPolicy = 1024

func parsePolicyCached(domain, txt string) *policyRecord {
	if len(domain)+len(txt) > maxMemoPolicy {
		return parsePolicyRecord(domain, txt)
	}
	return parsedPolicies.get([2]string{domain, txt}, func() *policyRecord { return parsePolicyRecord(domain, txt) })
}

// memo keeps the values of a pure function by argument, at most max of
// them: when full it starts over, as it only saves work.
type memo[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]V
	max int
}

func (c *memo[K, V]) get(key K, compute func() V) V {
	c.mu.Lock()
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = compute()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[K]V)
	}
	c.m[key] = v
	c.mu.Unlock()
	return v
}

// dmarcTags splits a record; ok is false unless it starts with v=DMARC1.
func dmarcTags(txt string) (map[string]string, bool) {
	parts := strings.Split(txt, ";")
	k, v, found := strings.Cut(parts[0], "=")
	if !found || strings.TrimSpace(k) != "v" || strings.TrimSpace(v) != "DMARC1" {
		return nil, false
	}
	tags := map[string]string{}
	for _, p := range parts[1:] {
		if k, v, ok := strings.Cut(p, "="); ok {
			tags[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return tags, true
}

func validPolicy(s string) string {
	switch s {
	case "none", "quarantine", "reject":
		return s
	}
	return ""
}

func validMode(s string) string {
	if s == "s" {
		return "s"
	}
	return "r"
}

// dmarcLookup fetches the single DMARC record of a domain: nil when there
// is none or more than one (RFC 9989 section 4.10 discards them all); an
// error only for a temporary failure.
func dmarcLookup(ctx context.Context, r Resolver, domain string) (*policyRecord, error) {
	txts, err := r.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, dnsErrorOf(err, "_dmarc."+domain)
	}
	var found []*policyRecord
	for _, t := range txts {
		if rec := parsePolicyCached(domain, t); rec != nil {
			found = append(found, rec)
		}
	}
	if len(found) != 1 {
		return nil, nil
	}
	return found[0], nil
}

// walkTargets are the names the tree walk asks, in order: the domain, then
// (past seven labels) its last seven labels, then one label fewer each
// time, down to the top-level domain. At most maxWalkQueries names.
func walkTargets(domain string) []string {
	labels := strings.Split(domain, ".")
	out := []string{domain}
	n := min(len(labels)-1, maxWalkQueries-1)
	for ; n >= 1; n-- {
		out = append(out, strings.Join(labels[len(labels)-n:], "."))
	}
	return out
}

// discovery is what the walk learned about one domain.
type discovery struct {
	policy  *policyRecord // the record that applies, nil when none
	org     string        // organizational domain
	queries int
}

// treeWalk finds the policy record (the first found going up) and the
// organizational domain (RFC 9989 section 4.10.2: the record with psd=n,
// the domain below one with psd=y, else the highest record found, else
// the domain itself).
func treeWalk(ctx context.Context, r Resolver, domain string) (discovery, error) {
	var d discovery
	var highest string
	targets := walkTargets(domain)
	for i, t := range targets {
		d.queries++
		rec, err := dmarcLookup(ctx, r, t)
		if err != nil {
			return d, err
		}
		if rec == nil {
			continue
		}
		if d.policy == nil {
			d.policy = rec
		}
		highest = t
		if rec.psd == "n" {
			d.org = t
			return d, nil
		}
		if rec.psd == "y" && i > 0 {
			d.org = oneLabelBelow(domain, t)
			return d, nil
		}
	}
	d.org = highest
	if d.org == "" {
		d.org = domain
	}
	return d, nil
}

// oneLabelBelow is the name under parent on the way to domain.
func oneLabelBelow(domain, parent string) string {
	labels := strings.Split(domain, ".")
	n := len(strings.Split(parent, ".")) + 1
	return strings.Join(labels[max(len(labels)-n, 0):], ".")
}

// pslDiscovery is RFC 7489: the domain's record, else the record of its
// organizational domain by the public suffix list.
func pslDiscovery(ctx context.Context, r Resolver, domain string) (discovery, error) {
	d := discovery{org: pslOrg(domain)}
	targets := []string{domain}
	if d.org != domain {
		targets = append(targets, d.org)
	}
	for _, t := range targets {
		d.queries++
		rec, err := dmarcLookup(ctx, r, t)
		if err != nil || rec != nil {
			d.policy = rec
			return d, err
		}
	}
	return d, nil
}

func pslOrg(domain string) string {
	if org, err := publicsuffix.EffectiveTLDPlusOne(domain); err == nil {
		return org
	}
	return domain
}

// dmarcEvaluator runs discovery and alignment for one message.
type dmarcEvaluator struct {
	r         Resolver
	discovery string
	// cache keeps discoveries until the first DNS answer they used
	// expires; nil when off.
	cache *lruCache[discoveryKey, discovery]
	obs   *Observer
}

// discoveryKey: what a discovery depends on besides DNS.
type discoveryKey struct {
	method, domain string
}

func (e dmarcEvaluator) discover(ctx context.Context, domain string) (discovery, error) {
	if e.discovery == DiscoveryPSL {
		return e.cached(ctx, DiscoveryPSL, domain, pslDiscovery)
	}
	return e.cached(ctx, DiscoveryTreeWalk, domain, treeWalk)
}

// cached runs a discovery, or takes its result from the cache. A failed
// discovery (temperror) is never kept.
func (e dmarcEvaluator) cached(ctx context.Context, method, domain string, run func(context.Context, Resolver, string) (discovery, error)) (discovery, error) {
	if e.cache == nil {
		return run(ctx, e.r, domain)
	}
	key := discoveryKey{method, domain}
	if d, _, ok := e.cache.get(key); ok {
		e.obs.resultCacheHit("dmarc")
		return d, nil
	}
	tctx, exp := trackExpiry(ctx)
	d, err := run(tctx, e.r, domain)
	if err == nil {
		e.cache.put(key, d, exp.validUntil(e.cache.now()))
	}
	return d, err
}

// orgDomain of an authenticated identifier, for relaxed alignment.
func (e dmarcEvaluator) orgDomain(ctx context.Context, domain string) (string, error) {
	if e.discovery == DiscoveryPSL {
		return pslOrg(domain), nil
	}
	d, err := e.cached(ctx, DiscoveryTreeWalk, domain, treeWalk)
	return d.org, err
}

// aligned says whether an authenticated domain aligns with the From domain
// (RFC 9989 section 4.4): the same name in strict mode, the same
// organizational domain in relaxed mode. A name outside the From domain's
// organization costs no query.
func (e dmarcEvaluator) aligned(ctx context.Context, id, from, fromOrg, mode string) (bool, error) {
	id = strings.ToLower(strings.TrimSuffix(id, "."))
	if id == "" {
		return false, nil
	}
	if id == from {
		return true, nil
	}
	if mode == "s" || (id != fromOrg && !strings.HasSuffix(id, "."+fromOrg)) {
		return false, nil
	}
	org, err := e.orgDomain(ctx, id)
	return org == fromOrg, err
}

// evaluate computes DMARC for the From field values of the header.
func (e dmarcEvaluator) evaluate(ctx context.Context, fromFields []string, spfRes *SPFResult, dkimRes *DKIMResults) *DMARCResult {
	res := &DMARCResult{Discovery: e.discovery}
	from, err := authorDomain(fromFields)
	if err != nil {
		res.Result, res.Reason = "permerror", err.Error()
		return res
	}
	res.FromDomain = from
	disc, err := e.discover(ctx, from)
	if err != nil {
		res.Result, res.Reason = "temperror", "policy discovery: "+err.Error()
		return res
	}
	res.OrgDomain = disc.org
	if disc.policy == nil {
		res.Result, res.Reason = "none", "no DMARC record"
		return res
	}
	rec := disc.policy
	res.PolicyDomain, res.P, res.SP, res.NP = rec.domain, rec.p, rec.sp, rec.np
	res.ADKIM, res.ASPF, res.Testing = rec.adkim, rec.aspf, rec.testing
	res.Policy = e.applicablePolicy(ctx, rec, from)

	var tempErrs []string
	if spfRes != nil {
		ok, err := e.aligned(ctx, spfRes.Domain, from, disc.org, rec.aspf)
		switch {
		case err != nil:
			tempErrs = append(tempErrs, "spf alignment: "+err.Error())
		case ok && spfRes.Result == "pass":
			res.AlignedSPF = spfRes.Domain
		case ok && spfRes.Result == "temperror":
			tempErrs = append(tempErrs, "spf temperror")
		}
	}
	if dkimRes != nil {
		for _, s := range dkimRes.Signatures {
			ok, err := e.aligned(ctx, s.Domain, from, disc.org, rec.adkim)
			switch {
			case err != nil:
				tempErrs = append(tempErrs, "dkim alignment: "+err.Error())
			case ok && s.Result == "pass":
				res.AlignedDKIM = append(res.AlignedDKIM, s.Domain)
			case ok && s.Result == "temperror":
				tempErrs = append(tempErrs, "dkim temperror for "+s.Domain)
			}
		}
	}
	switch {
	case res.AlignedSPF != "" || len(res.AlignedDKIM) > 0:
		res.Result = "pass"
	case len(tempErrs) > 0:
		res.Result, res.Reason = "temperror", strings.Join(tempErrs, "; ")
	default:
		res.Result, res.Reason = "fail", "no aligned SPF or DKIM pass"
	}
	return res
}

// applicablePolicy is p for the domain that published the record, sp for
// a subdomain, np for a subdomain that does not exist (no A, AAAA or MX),
// each falling back as RFC 9989 section 4.7 says; "none" while t=y asks
// receivers not to apply it.
func (e dmarcEvaluator) applicablePolicy(ctx context.Context, rec *policyRecord, from string) string {
	if rec.testing {
		return "none"
	}
	if rec.domain == from {
		return rec.p
	}
	if rec.np != "" && e.nonExistent(ctx, from) {
		return rec.np
	}
	if rec.sp != "" {
		return rec.sp
	}
	return rec.p
}

// nonExistent is true only on clear "not found" answers for both the
// addresses and the MX of a domain.
func (e dmarcEvaluator) nonExistent(ctx context.Context, domain string) bool {
	if _, err := e.r.LookupIPAddr(ctx, domain); !isNotFound(err) {
		return false
	}
	_, err := e.r.LookupMX(ctx, domain)
	return isNotFound(err)
}

// authorDomain is the domain of the one From address (RFC 9989 section
// 4.6: a From with no or several addresses cannot be evaluated).
func authorDomain(fromFields []string) (string, error) {
	if len(fromFields) != 1 {
		return "", fmt.Errorf("%d From fields", len(fromFields))
	}
	field := fromFields[0]
	if len(field) > maxMemoFrom {
		return fromDomain(field)
	}
	d := fromDomains.get(field, func() domainOrError {
		domain, err := fromDomain(field)
		return domainOrError{domain, err}
	})
	return d.domain, d.err
}

// maxMemoFrom bounds the From values kept (4096 of them): a longer one is
// parsed each time, so hostile headers cannot pin much memory.
const maxMemoFrom = 256

// fromDomains keeps fromDomain's answers by field value: mail from one
// sender (alerts, reports) repeats its From field, and parsing the address
// list and the IDNA conversion cost more than the rest of DMARC from warm
// caches.
var fromDomains = &memo[string, domainOrError]{max: 4096}

type domainOrError struct {
	domain string
	err    error
}

// fromDomain is the domain of the one address of a From field value.
func fromDomain(field string) (string, error) {
	addrs, err := mail.ParseAddressList(unfold(field))
	if err != nil {
		return "", fmt.Errorf("From unparsable: %v", err)
	}
	if len(addrs) != 1 {
		return "", fmt.Errorf("%d addresses in From", len(addrs))
	}
	d := domainOf(addrs[0].Address)
	if d == "" {
		return "", fmt.Errorf("From address without a domain")
	}
	// An internationalized From domain is looked up and aligned in its
	// A-label form (xn--...), as DNS and DKIM d= spell it.
	ascii, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("From domain %q is not a valid domain name: %v", d, err)
	}
	return ascii, nil
}
