package senderauth

import (
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

func TestStripComments(t *testing.T) {
	tests := map[string]string{
		`mx.example.org; dkim=pass (2048-bit key; unprotected) header.d=example.org`: `mx.example.org; dkim=pass   header.d=example.org`,
		`a (x (nested; y) z) b`:                `a   b`,
		`a "quoted (not a comment)" b`:         `a "quoted (not a comment)" b`,
		`a (escaped \) paren; still) b`:        `a   b`,
		`mx.example.org (comment; here); none`: `mx.example.org  ; none`,
	}
	for in, want := range tests {
		if got := stripComments(in); strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(want), " ") {
			t.Errorf("stripComments(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUpstreamResults(t *testing.T) {
	trusted := []string{"mx.example.org"}
	tests := []struct {
		name      string
		fields    []string
		wantNil   bool
		spf, dkim string
		dmarc     string
		dkimDoms  []string
		spfDomain string
	}{
		{
			name: "opendkim and opendmarc behind postfix",
			fields: []string{
				"mx.example.org; dmarc=pass (p=reject dis=none) header.from=example.com",
				"mx.example.org;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.b=abc;\r\n\tspf=pass (mx.example.org: domain of a@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@example.com",
			},
			spf: "pass", dkim: "pass", dmarc: "pass", dkimDoms: []string{"example.com"}, spfDomain: "example.com",
		},
		{
			name:   "capitalised results and method names",
			fields: []string{"MX.EXAMPLE.ORG; SPF=Pass smtp.mailfrom=example.com; DKIM=FAIL header.d=example.com; DMARC=Fail header.from=example.com"},
			spf:    "pass", dkim: "fail", dmarc: "fail", spfDomain: "example.com",
		},
		{
			name:    "other authserv-id is ignored",
			fields:  []string{"evil.example.net; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com"},
			wantNil: true,
		},
		{
			name: "topmost trusted field wins per method",
			fields: []string{
				"mx.example.org; spf=fail smtp.mailfrom=example.com",
				"mx.example.org; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com",
			},
			spf: "fail", dmarc: "pass", spfDomain: "example.com",
		},
		{
			name:   "helo identity",
			fields: []string{"mx.example.org; spf=none smtp.helo=relay.example.com"},
			spf:    "none", spfDomain: "relay.example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upstreamResults(tt.fields, trusted)
			if tt.wantNil {
				if got != nil {
					t.Fatalf("got %+v, want nothing", got)
				}
				return
			}
			if got == nil || got.Source != SourceUpstream || got.AuthenticationResults == "" {
				t.Fatalf("got %+v", got)
			}
			check := func(method, have, want string) {
				if have != want {
					t.Errorf("%s = %q, want %q", method, have, want)
				}
			}
			if got.SPF != nil {
				check("spf", got.SPF.Result, tt.spf)
				check("spf domain", got.SPF.Domain, tt.spfDomain)
			} else {
				check("spf", "", tt.spf)
			}
			if got.DKIM != nil {
				check("dkim", got.DKIM.Result, tt.dkim)
				check("dkim domains", strings.Join(got.DKIM.PassingDomains(), ","), strings.Join(tt.dkimDoms, ","))
			} else {
				check("dkim", "", tt.dkim)
			}
			if got.DMARC != nil {
				check("dmarc", got.DMARC.Result, tt.dmarc)
			} else {
				check("dmarc", "", tt.dmarc)
			}
		})
	}
}

func TestFormatResults(t *testing.T) {
	r := &Results{
		SPF:   &SPFResult{Result: "pass", Domain: "example.org", Scope: ScopeMailFrom},
		DKIM:  &DKIMResults{Result: "pass", Signatures: []DKIMSignature{{Result: "pass", Domain: "example.org", Selector: "s1", Algorithm: "ed25519-sha256", Identifier: "@example.org"}}},
		DMARC: &DMARCResult{Result: "pass", FromDomain: "example.org", Policy: "reject"},
	}
	got := formatResults("mx.example.com", r)
	want := "mx.example.com; spf=pass smtp.mailfrom=example.org; dkim=pass header.a=ed25519-sha256 header.d=example.org header.i=@example.org header.s=s1; dmarc=pass header.from=example.org policy.dmarc=reject"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Our own line reads back through the upstream parser.
	back := upstreamResults([]string{got}, []string{"mx.example.com"})
	if back == nil || back.SPF.Result != "pass" || back.DKIM.Result != "pass" || back.DMARC.Result != "pass" {
		t.Fatalf("round trip: %+v", back)
	}
}

// formatWithAuthres is how formatResults used to write the line, through
// go-msgauth's authres.Format: the reference the own formatter must match.
func formatWithAuthres(authservID string, r *Results) string {
	var rs []authres.Result
	if r.SPF != nil {
		p := map[string]string{"reason": r.SPF.Reason}
		if r.SPF.Scope == ScopeHelo {
			p["smtp.helo"] = r.SPF.Domain
		} else {
			p["smtp.mailfrom"] = r.SPF.Domain
		}
		rs = append(rs, &authres.GenericResult{Method: "spf", Value: authres.ResultValue(r.SPF.Result), Params: p})
	}
	if r.DKIM != nil {
		if len(r.DKIM.Signatures) == 0 {
			rs = append(rs, &authres.GenericResult{Method: "dkim", Value: authres.ResultNone, Params: map[string]string{}})
		}
		for _, s := range r.DKIM.Signatures {
			rs = append(rs, &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(s.Result), Params: map[string]string{
				"reason": s.Reason, "header.d": s.Domain, "header.i": s.Identifier, "header.s": s.Selector, "header.a": s.Algorithm,
			}})
		}
	}
	if r.DMARC != nil {
		p := map[string]string{"reason": r.DMARC.Reason, "header.from": r.DMARC.FromDomain, "policy.dmarc": r.DMARC.Policy}
		rs = append(rs, &authres.GenericResult{Method: "dmarc", Value: authres.ResultValue(r.DMARC.Result), Params: p})
	}
	return strings.TrimSpace(authres.Format(authservID, rs))
}

// resultsOf builds Results whose every text field is one of the given
// strings, for comparing the formatters on odd values.
func resultsOf(reason, domain, id, selector string, helo bool, sigs int) *Results {
	scope := ScopeMailFrom
	if helo {
		scope = ScopeHelo
	}
	r := &Results{
		SPF:   &SPFResult{Result: "pass", Domain: domain, Scope: scope, Reason: reason},
		DKIM:  &DKIMResults{Result: "none"},
		DMARC: &DMARCResult{Result: "fail", FromDomain: domain, Policy: selector, Reason: reason},
	}
	for range sigs {
		r.DKIM.Signatures = append(r.DKIM.Signatures, DKIMSignature{Result: "fail", Domain: domain, Selector: selector, Algorithm: "rsa-sha256", Identifier: id, Reason: reason})
	}
	return r
}

// TestFormatResultsMatchesAuthres: the own formatter writes exactly what
// authres.Format wrote, for ordinary results and for values that need
// quoting (spaces, tspecials, quotes, non-ASCII, control characters).
func TestFormatResultsMatchesAuthres(t *testing.T) {
	cases := []*Results{
		{},
		{SPF: &SPFResult{Result: "none", Domain: "example.org", Scope: ScopeMailFrom, Reason: "no domain to check"}},
		{DKIM: &DKIMResults{Result: "none"}},
		resultsOf("", "example.org", "@example.org", "s1", false, 1),
		resultsOf("matched ip", "example.org", "alice@example.org", "sel-2026", true, 2),
		resultsOf(`lookup "x"; failed (timeout)`, "bücher.example", "a+b=c@example.org", "s/1", false, 1),
		resultsOf("tab\there", "[192.0.2.1]", `"quoted"@example.org`, "a(b)c", false, 3),
		resultsOf("é", "", "", "", false, 1),
		resultsOf("x\x00y\x7f", "exa mple.org", "#$%&'*+,./-@[]\\^_`{|}~", "~", true, 0),
		{SPF: &SPFResult{Result: "pass", Domain: "example.org", Scope: ScopeMailFrom}, DMARC: &DMARCResult{Result: "none", FromDomain: "example.org"}},
	}
	for _, id := range []string{"mx.example.com", "", " spaced "} {
		for i, r := range cases {
			if got, want := formatResults(id, r), formatWithAuthres(id, r); got != want {
				t.Errorf("case %d, id %q:\n got %q\nwant %q", i, id, got, want)
			}
		}
	}
}

// FuzzFormatResults: for any text in the fields, the own formatter and
// authres.Format write the same line.
func FuzzFormatResults(f *testing.F) {
	f.Add("mx.example.com", "matched ip", "example.org", "@example.org", "s1", false, uint8(1))
	f.Add("", `a "b" (c)`, "bücher.example", "x=y@example.org", "s/1", true, uint8(2))
	f.Fuzz(func(t *testing.T, id, reason, domain, ident, selector string, helo bool, sigs uint8) {
		r := resultsOf(reason, domain, ident, selector, helo, int(sigs%4))
		if got, want := formatResults(id, r), formatWithAuthres(id, r); got != want {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}
