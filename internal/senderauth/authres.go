package senderauth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// stripComments removes RFC 5322 comments (nested, with quoted-pairs) from
// an Authentication-Results value, outside quoted strings, so that a ";"
// inside "(2048-bit key; unprotected)" does not split a result.
func stripComments(v string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && (depth > 0 || quoted) && i+1 < len(v):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(v[i+1])
			}
			i++
		case quoted:
			b.WriteByte(c)
			if c == '"' {
				quoted = false
			}
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(' ')
			}
		case depth > 0:
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// upstreamResults builds Results from the topmost Authentication-Results
// fields whose authserv-id is trusted: for each method, the first field
// (top down) that reports it. Fields of other authserv-ids are ignored.
// It returns nil when no trusted field is present.
func upstreamResults(fields []string, trusted []string) *Results {
	var lines []string
	var spfRes *authres.SPFResult
	var dkimRes []*authres.DKIMResult
	var dmarcRes *authres.DMARCResult
	haveDKIM := false
	for _, raw := range fields {
		line := unfold(raw)
		id, results, err := authres.Parse(stripComments(line))
		// A field that does not parse to the end still gives what it has.
		if !listed(id, trusted) || (err != nil && len(results) == 0) {
			continue
		}
		lines = append(lines, line)
		var fieldDKIM []*authres.DKIMResult
		for _, r := range results {
			switch r := r.(type) {
			case *authres.SPFResult:
				if spfRes == nil {
					spfRes = r
				}
			case *authres.DKIMResult:
				fieldDKIM = append(fieldDKIM, r)
			case *authres.DMARCResult:
				if dmarcRes == nil {
					dmarcRes = r
				}
			}
		}
		if !haveDKIM && len(fieldDKIM) > 0 {
			dkimRes, haveDKIM = fieldDKIM, true
		}
	}
	if len(lines) == 0 {
		return nil
	}
	out := &Results{Source: SourceUpstream, AuthenticationResults: strings.Join(lines, "\n")}
	if spfRes != nil {
		out.SPF = &SPFResult{Result: string(spfRes.Value), Reason: spfRes.Reason, Scope: ScopeMailFrom, Domain: domainOf(spfRes.From)}
		if spfRes.From == "" && spfRes.Helo != "" {
			out.SPF.Scope, out.SPF.Domain = ScopeHelo, strings.ToLower(spfRes.Helo)
		} else if out.SPF.Domain == "" {
			out.SPF.Domain = strings.ToLower(strings.TrimPrefix(spfRes.From, "@"))
		}
	}
	if haveDKIM {
		out.DKIM = &DKIMResults{}
		for _, r := range dkimRes {
			out.DKIM.Signatures = append(out.DKIM.Signatures, DKIMSignature{
				Result: string(r.Value), Domain: strings.ToLower(r.Domain), Identifier: r.Identifier, Reason: r.Reason,
			})
		}
		out.DKIM.Result = dkimSummary(out.DKIM.Signatures)
	}
	if dmarcRes != nil {
		out.DMARC = &DMARCResult{Result: string(dmarcRes.Value), FromDomain: strings.ToLower(dmarcRes.From), Reason: dmarcRes.Reason}
	}
	return out
}

func listed(id string, trusted []string) bool {
	for _, t := range trusted {
		if strings.EqualFold(id, t) {
			return true
		}
	}
	return false
}

// formatResults writes our own RFC 8601 field value.
func formatResults(authservID string, r *Results) string {
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
