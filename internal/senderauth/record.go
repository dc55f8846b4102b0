package senderauth

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// PutAttributes writes the flat attributes used for filtering and routing.
func (r *Results) PutAttributes(attrs pcommon.Map) {
	attrs.EnsureCapacity(attrs.Len() + 9)
	attrs.PutStr("email.auth.source", r.Source)
	if r.SPF != nil {
		attrs.PutStr("email.spf.result", r.SPF.Result)
		putNonEmpty(attrs, "email.spf.domain", r.SPF.Domain)
		putNonEmpty(attrs, "email.spf.scope", r.SPF.Scope)
	}
	if r.DKIM != nil {
		attrs.PutStr("email.dkim.result", r.DKIM.Result)
		if ds := r.DKIM.PassingDomains(); len(ds) > 0 {
			putStrings(attrs, "email.dkim.domains", ds)
		}
	}
	if r.DMARC != nil {
		attrs.PutStr("email.dmarc.result", r.DMARC.Result)
		putNonEmpty(attrs, "email.dmarc.policy", r.DMARC.Policy)
		putNonEmpty(attrs, "email.dmarc.from_domain", r.DMARC.FromDomain)
	}
}

// PutBody writes the details under the body key "auth".
func (r *Results) PutBody(body pcommon.Map) {
	// The maps are sized up front: growing them was a third of the
	// allocations of sender authentication.
	m := body.PutEmptyMap("auth")
	m.EnsureCapacity(5)
	m.PutStr("source", r.Source)
	if r.SPF != nil {
		s := m.PutEmptyMap("spf")
		s.EnsureCapacity(4)
		s.PutStr("result", r.SPF.Result)
		putNonEmpty(s, "domain", r.SPF.Domain)
		putNonEmpty(s, "scope", r.SPF.Scope)
		putNonEmpty(s, "reason", r.SPF.Reason)
	}
	if r.DKIM != nil {
		d := m.PutEmptyMap("dkim")
		d.EnsureCapacity(3)
		d.PutStr("result", r.DKIM.Result)
		sigs := d.PutEmptySlice("signatures")
		sigs.EnsureCapacity(len(r.DKIM.Signatures))
		for _, sig := range r.DKIM.Signatures {
			s := sigs.AppendEmpty().SetEmptyMap()
			s.EnsureCapacity(6)
			s.PutStr("result", sig.Result)
			putNonEmpty(s, "domain", sig.Domain)
			putNonEmpty(s, "selector", sig.Selector)
			putNonEmpty(s, "algorithm", sig.Algorithm)
			putNonEmpty(s, "identifier", sig.Identifier)
			putNonEmpty(s, "reason", sig.Reason)
		}
		if r.DKIM.Ignored > 0 {
			d.PutInt("signatures_not_verified", int64(r.DKIM.Ignored))
		}
	}
	if r.DMARC != nil {
		putDMARC(m.PutEmptyMap("dmarc"), r.DMARC)
	}
	putNonEmpty(m, "authentication_results", r.AuthenticationResults)
}

func putDMARC(d pcommon.Map, r *DMARCResult) {
	d.EnsureCapacity(15)
	d.PutStr("result", r.Result)
	putNonEmpty(d, "from_domain", r.FromDomain)
	putNonEmpty(d, "policy", r.Policy)
	putNonEmpty(d, "policy_domain", r.PolicyDomain)
	putNonEmpty(d, "org_domain", r.OrgDomain)
	putNonEmpty(d, "p", r.P)
	putNonEmpty(d, "sp", r.SP)
	putNonEmpty(d, "np", r.NP)
	putNonEmpty(d, "adkim", r.ADKIM)
	putNonEmpty(d, "aspf", r.ASPF)
	if r.PolicyDomain != "" {
		d.PutBool("testing", r.Testing)
	}
	putNonEmpty(d, "discovery", r.Discovery)
	putNonEmpty(d, "aligned_spf", r.AlignedSPF)
	if len(r.AlignedDKIM) > 0 {
		putStrings(d, "aligned_dkim", r.AlignedDKIM)
	}
	putNonEmpty(d, "reason", r.Reason)
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func putStrings(m pcommon.Map, k string, vs []string) {
	s := m.PutEmptySlice(k)
	s.EnsureCapacity(len(vs))
	for _, v := range vs {
		s.AppendEmpty().SetStr(v)
	}
}
