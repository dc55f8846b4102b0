package senderauth

import (
	"strings"
	"unicode"

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

// formatResults writes our own RFC 8601 field value, the text go-msgauth's
// authres.Format writes for the same results (TestFormatResultsMatchesAuthres,
// FuzzFormatResults), without its maps and repeated concatenation: for
// each method "; method=result " and the non-empty properties, reason
// first, the others in name order.
func formatResults(authservID string, r *Results) string {
	var b strings.Builder
	b.Grow(192)
	b.WriteString(authservID)
	if r.SPF == nil && r.DKIM == nil && r.DMARC == nil {
		b.WriteString("; none")
		return strings.TrimSpace(b.String())
	}
	if r.SPF != nil {
		id := "smtp.mailfrom"
		if r.SPF.Scope == ScopeHelo {
			id = "smtp.helo"
		}
		writeResult(&b, "spf", r.SPF.Result, r.SPF.Reason, id, r.SPF.Domain)
	}
	if r.DKIM != nil {
		if len(r.DKIM.Signatures) == 0 {
			writeResult(&b, "dkim", "none", "")
		}
		for _, s := range r.DKIM.Signatures {
			writeResult(&b, "dkim", s.Result, s.Reason,
				"header.a", s.Algorithm, "header.d", s.Domain, "header.i", s.Identifier, "header.s", s.Selector)
		}
	}
	if r.DMARC != nil {
		writeResult(&b, "dmarc", r.DMARC.Result, r.DMARC.Reason,
			"header.from", r.DMARC.FromDomain, "policy.dmarc", r.DMARC.Policy)
	}
	return strings.TrimSpace(b.String())
}

// writeResult writes one resinfo; props are name, value pairs in name
// order, and empty values are left out.
func writeResult(b *strings.Builder, method, result, reason string, props ...string) {
	b.WriteString("; ")
	b.WriteString(method)
	b.WriteByte('=')
	b.WriteString(result)
	b.WriteByte(' ')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(' ')
		}
		first = false
	}
	if reason != "" {
		sep()
		b.WriteString("reason=")
		writeValue(b, reason)
	}
	for i := 0; i+1 < len(props); i += 2 {
		if props[i+1] == "" {
			continue
		}
		sep()
		b.WriteString(props[i])
		b.WriteByte('=')
		writePvalue(b, props[i+1])
	}
}

// writeValue writes an RFC 2045 value: a token as it is, anything with
// a space, control character or tspecial as a quoted string (with
// authres's escaping: only '"' gets a backslash).
func writeValue(b *strings.Builder, s string) {
	if !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || strings.ContainsRune(tspecials, r) }) {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(s, `"`, `\"`))
	b.WriteByte('"')
}

const tspecials = `()<>@,;:\"/[]?=`

// addressPunct is the punctuation an address-like pvalue may carry
// unquoted: most of ASCII's, but not ( ) = " (which read as comments,
// a property or a quoted string).
const addressPunct = "#$%&'*+,./-@[]\\^_`{|}~"

// writePvalue writes an RFC 8601 pvalue: a domain name or address as it
// is, anything else as a value.
func writePvalue(b *strings.Builder, s string) {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune(addressPunct, r)
	}) {
		b.WriteString(s)
		return
	}
	writeValue(b, s)
}
