package senderauth

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestWalkTargets(t *testing.T) {
	tests := []struct {
		domain string
		want   []string
	}{
		{"example.org", []string{"example.org", "org"}},
		{"a.b.example.org", []string{"a.b.example.org", "b.example.org", "example.org", "org"}},
		{"l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.example.org", []string{
			"l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.example.org",
			"l6.l7.l8.l9.l10.example.org", "l7.l8.l9.l10.example.org", "l8.l9.l10.example.org",
			"l9.l10.example.org", "l10.example.org", "example.org", "org"}},
	}
	for _, tt := range tests {
		if got := walkTargets(tt.domain); !slices.Equal(got, tt.want) {
			t.Errorf("walkTargets(%s) = %v, want %v", tt.domain, got, tt.want)
		}
	}
}

func TestTreeWalkQueryLimit(t *testing.T) {
	from := "l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.example.org" // 12 labels
	f := newFakeDNS().addTXT("_dmarc.example.org", "v=DMARC1; p=reject")
	d, err := treeWalk(context.Background(), f, from)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count("TXT", "_dmarc."); n > 8 || d.queries > 8 {
		t.Fatalf("%d _dmarc queries (walk says %d), want at most 8: %v", n, d.queries, f.queries)
	}
	if d.policy == nil || d.policy.domain != "example.org" || d.org != "example.org" {
		t.Fatalf("policy %+v org %q", d.policy, d.org)
	}
}

func TestParsePolicyRecord(t *testing.T) {
	tests := []struct {
		txt  string
		want *policyRecord
	}{
		{"v=spf1 -all", nil},
		{"v=DMARC1; p=reject", &policyRecord{p: "reject", adkim: "r", aspf: "r"}},
		{"v=DMARC1;p=quarantine;sp=none;np=reject;adkim=s;aspf=s;t=y;psd=n", &policyRecord{p: "quarantine", sp: "none", np: "reject", adkim: "s", aspf: "s", testing: true, psd: "n"}},
		{"v=DMARC1; p=reject; pct=150; rf=xml; ri=-1", &policyRecord{p: "reject", adkim: "r", aspf: "r"}},          // removed tags ignored
		{"v=DMARC1; rua=mailto:d@example.org", &policyRecord{p: "none", adkim: "r", aspf: "r"}},                    // no p reads as none
		{"v=DMARC1; p=bogus; sp=reject; unknown=1", &policyRecord{p: "none", sp: "reject", adkim: "r", aspf: "r"}}, // invalid p
	}
	for _, tt := range tests {
		got := parsePolicyRecord("example.org", tt.txt)
		if tt.want == nil {
			if got != nil {
				t.Errorf("%q: got %+v, want no record", tt.txt, got)
			}
			continue
		}
		tt.want.domain = "example.org"
		if got == nil || *got != *tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.txt, got, tt.want)
		}
	}
}

func spfPass(domain string) *SPFResult {
	return &SPFResult{Result: "pass", Domain: domain, Scope: ScopeMailFrom}
}

func dkimPass(domains ...string) *DKIMResults {
	r := &DKIMResults{}
	for _, d := range domains {
		r.Signatures = append(r.Signatures, DKIMSignature{Result: "pass", Domain: d})
	}
	r.Result = dkimSummary(r.Signatures)
	return r
}

func TestDMARCEvaluate(t *testing.T) {
	org := func() *fakeDNS {
		return newFakeDNS().
			addTXT("_dmarc.example.org", "v=DMARC1; p=reject; sp=quarantine; np=reject").
			addIP("example.org", "192.0.2.1").addIP("news.example.org", "192.0.2.2").
			addTXT("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s").
			addTXT("_dmarc.testing.example", "v=DMARC1; p=reject; t=y")
	}
	tests := []struct {
		name       string
		dns        *fakeDNS
		discovery  string
		from       []string
		spf        *SPFResult
		dkim       *DKIMResults
		want       string
		wantPolicy string
		wantDomain string
	}{
		{"aligned spf passes", org(), "", []string{"a@example.org"}, spfPass("example.org"), nil, "pass", "reject", "example.org"},
		{"aligned dkim passes", org(), "", []string{"Alice <a@example.org>"}, nil, dkimPass("example.org"), "pass", "reject", "example.org"},
		{"relaxed: subdomain spf aligns", org(), "", []string{"a@example.org"}, spfPass("bounce.example.org"), nil, "pass", "reject", "example.org"},
		{"relaxed: parent dkim aligns with subdomain From", org(), "", []string{"a@news.example.org"}, nil, dkimPass("example.org"), "pass", "quarantine", "news.example.org"},
		{"strict: subdomain does not align", org(), "", []string{"a@strict.example"}, spfPass("bounce.strict.example"), dkimPass("mail.strict.example"), "fail", "reject", "strict.example"},
		{"strict: same domain aligns", org(), "", []string{"a@strict.example"}, nil, dkimPass("strict.example"), "pass", "reject", "strict.example"},
		{"other domain does not align", org(), "", []string{"a@example.org"}, spfPass("example.net"), dkimPass("example.com"), "fail", "reject", "example.org"},
		{"failed spf does not count", org(), "", []string{"a@example.org"}, &SPFResult{Result: "softfail", Domain: "example.org", Scope: ScopeMailFrom}, nil, "fail", "reject", "example.org"},
		{"null sender: helo identity aligns", org(), "", []string{"a@example.org"}, &SPFResult{Result: "pass", Domain: "mx.example.org", Scope: ScopeHelo}, nil, "pass", "reject", "example.org"},
		{"sp for an existing subdomain", org(), "", []string{"a@news.example.org"}, nil, nil, "fail", "quarantine", "news.example.org"},
		{"np for a non-existent subdomain", org(), "", []string{"a@ghost.example.org"}, nil, nil, "fail", "reject", "ghost.example.org"},
		{"t=y: policy not applied", org(), "", []string{"a@testing.example"}, nil, nil, "fail", "none", "testing.example"},
		{"no record is none", org(), "", []string{"a@example.net"}, spfPass("example.net"), nil, "none", "", "example.net"},
		{"no From is permerror", org(), "", nil, spfPass("example.org"), nil, "permerror", "", ""},
		{"two From fields is permerror", org(), "", []string{"a@example.org", "b@example.org"}, nil, nil, "permerror", "", ""},
		{"two addresses in From is permerror", org(), "", []string{"a@example.org, b@example.net"}, nil, nil, "permerror", "", ""},
		{"empty From is permerror", org(), "", []string{""}, nil, nil, "permerror", "", ""},
		{"servfail on discovery is temperror", org().failWith("_dmarc.example.org", "servfail"), "", []string{"a@example.org"}, nil, nil, "temperror", "", "example.org"},
		{"aligned spf temperror is temperror", org(), "", []string{"a@example.org"}, &SPFResult{Result: "temperror", Domain: "example.org", Scope: ScopeMailFrom}, nil, "temperror", "reject", "example.org"},
		{"several records are discarded", org().addTXT("_dmarc.example.net", "v=DMARC1; p=reject", "v=DMARC1; p=none"), "", []string{"a@example.net"}, nil, nil, "none", "", "example.net"},
		{"internationalized From domain in A-labels", org().addTXT("_dmarc.xn--bcher-kva.example", "v=DMARC1; p=quarantine"), "", []string{"=?utf-8?q?B=C3=BCcher?= <info@bücher.example>"}, nil, dkimPass("xn--bcher-kva.example"), "pass", "quarantine", "xn--bcher-kva.example"},
		{"psl discovery", org().addIP("deep.news.example.org", "192.0.2.3"), DiscoveryPSL, []string{"a@deep.news.example.org"}, nil, dkimPass("example.org"), "pass", "quarantine", "deep.news.example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disc := tt.discovery
			if disc == "" {
				disc = DiscoveryTreeWalk
			}
			e := dmarcEvaluator{r: tt.dns, discovery: disc}
			got := e.evaluate(context.Background(), tt.from, tt.spf, tt.dkim)
			if got.Result != tt.want || got.Policy != tt.wantPolicy || got.FromDomain != tt.wantDomain {
				t.Fatalf("got %+v\nwant result %s policy %q from %q", got, tt.want, tt.wantPolicy, tt.wantDomain)
			}
			if got.Result != "pass" && got.Reason == "" {
				t.Errorf("no reason for %s", got.Result)
			}
		})
	}
}

// TestTreeWalkOrgDomain covers the psd tag: psd=y above the domain makes
// the name below it the organizational domain, psd=n stops the walk.
func TestTreeWalkOrgDomain(t *testing.T) {
	tests := []struct {
		name    string
		dns     *fakeDNS
		domain  string
		org     string
		policy  string
		queries int
	}{
		{"no records: the domain itself", newFakeDNS(), "a.b.example.org", "a.b.example.org", "", 4},
		{"highest record", newFakeDNS().addTXT("_dmarc.b.example.org", "v=DMARC1; p=none").addTXT("_dmarc.example.org", "v=DMARC1; p=reject"), "a.b.example.org", "example.org", "b.example.org", 4},
		{"psd=n stops", newFakeDNS().addTXT("_dmarc.b.example.org", "v=DMARC1; p=none; psd=n").addTXT("_dmarc.example.org", "v=DMARC1; p=reject"), "a.b.example.org", "b.example.org", "b.example.org", 2},
		{"psd=y: one label below", newFakeDNS().addTXT("_dmarc.example", "v=DMARC1; p=reject; psd=y"), "a.b.example", "b.example", "example", 3},
		{"psd=y at the domain itself is ignored", newFakeDNS().addTXT("_dmarc.example", "v=DMARC1; p=reject; psd=y"), "example", "example", "example", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := treeWalk(context.Background(), tt.dns, tt.domain)
			if err != nil {
				t.Fatal(err)
			}
			policy := ""
			if d.policy != nil {
				policy = d.policy.domain
			}
			if d.org != tt.org || policy != tt.policy || d.queries != tt.queries {
				t.Fatalf("org %q policy %q queries %d; want %q %q %d (%v)", d.org, policy, d.queries, tt.org, tt.policy, tt.queries, tt.dns.queries)
			}
		})
	}
}

// TestAlignmentCostsNoQueryOutsideTheOrganization: an identifier in
// another organization is told apart without asking DNS.
func TestAlignmentCostsNoQueryOutsideTheOrganization(t *testing.T) {
	f := newFakeDNS().addTXT("_dmarc.example.org", "v=DMARC1; p=reject")
	e := dmarcEvaluator{r: f, discovery: DiscoveryTreeWalk}
	got := e.evaluate(context.Background(), []string{"a@example.org"}, spfPass("example.net"), dkimPass("example.com", "example.net"))
	if got.Result != "fail" {
		t.Fatalf("got %+v", got)
	}
	for _, q := range f.queries {
		if strings.Contains(q, "example.net") || strings.Contains(q, "example.com") {
			t.Fatalf("asked %s", q)
		}
	}
}

// TestPolicyCache: a cached parse is the parse, per domain and string, and
// the cache starts over when full.
func TestPolicyCache(t *testing.T) {
	c := &memo[[2]string, *policyRecord]{max: 2}
	parse := func(domain, txt string) *policyRecord {
		return c.get([2]string{domain, txt}, func() *policyRecord { return parsePolicyRecord(domain, txt) })
	}
	a := parse("example.org", "v=DMARC1; p=reject")
	if a == nil || a.p != "reject" || a.domain != "example.org" {
		t.Fatalf("parsed %+v", a)
	}
	if again := parse("example.org", "v=DMARC1; p=reject"); again != a {
		t.Errorf("second parse of the same record was not the cached one")
	}
	if b := parse("example.com", "v=DMARC1; p=reject"); b == a || b.domain != "example.com" {
		t.Errorf("another domain got %+v", b)
	}
	if parse("example.org", "v=spf1 -all") != nil {
		t.Errorf("a non-DMARC string parsed as a record")
	}
	if len(c.m) > c.max {
		t.Errorf("cache holds %d entries, max %d", len(c.m), c.max)
	}
}

// TestAuthorDomainMemo: answers kept by From value equal fresh ones, the
// errors included, asked once or twice; a value longer than maxMemoFrom is
// never kept.
func TestAuthorDomainMemo(t *testing.T) {
	fields := []string{
		"Alice <alice@example.org>", "alice@EXAMPLE.org.", "a@example.org, b@example.org", "no address",
		"x@bücher.example", "<>", "x@xn--invalid-\u00e9-.example", "Bob\r\n <bob@example.org>",
	}
	for _, f := range fields {
		wantD, wantErr := fromDomain(f)
		for range 2 {
			d, err := authorDomain([]string{f})
			if d != wantD || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Errorf("authorDomain(%q) = %q, %v; want %q, %v", f, d, err, wantD, wantErr)
			}
		}
	}
	long := strings.Repeat("x", maxMemoFrom) + "@example.org"
	if d, err := authorDomain([]string{long}); d != "example.org" || err != nil {
		t.Fatalf("long From: %q %v", d, err)
	}
	fromDomains.mu.Lock()
	_, kept := fromDomains.m[long]
	fromDomains.mu.Unlock()
	if kept {
		t.Error("a From value longer than maxMemoFrom was kept")
	}
}

// TestPolicyCacheKeepsOnlySmallRecords: a huge TXT string is parsed, but
// never kept in the process-wide memo.
func TestPolicyCacheKeepsOnlySmallRecords(t *testing.T) {
	huge := "v=DMARC1; p=quarantine; rua=mailto:" + strings.Repeat("a", 60<<10) + "@example.org"
	rec := parsePolicyCached("big.example.org", huge)
	if rec == nil || rec.p != "quarantine" {
		t.Fatalf("parsed %+v", rec)
	}
	parsedPolicies.mu.Lock()
	_, kept := parsedPolicies.m[[2]string{"big.example.org", huge}]
	parsedPolicies.mu.Unlock()
	if kept {
		t.Errorf("a %d-byte record was kept in the memo", len(huge))
	}
	small := parsePolicyCached("small.example.org", "v=DMARC1; p=reject")
	if again := parsePolicyCached("small.example.org", "v=DMARC1; p=reject"); again != small {
		t.Errorf("a small record was not kept")
	}
}
