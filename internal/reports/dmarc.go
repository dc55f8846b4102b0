package reports

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The DMARC aggregate schema, by local name: RFC 9990 (namespace
// urn:ietf:params:xml:ns:dmarc-2.0), RFC 7489 appendix C (no namespace) and
// the pre-RFC draft (<identities> instead of <identifiers>) all decode here.
type dmarcMetadata struct {
	OrgName          string   `xml:"org_name"`
	Email            string   `xml:"email"`
	ExtraContactInfo string   `xml:"extra_contact_info"`
	ReportID         string   `xml:"report_id"`
	Begin            string   `xml:"date_range>begin"`
	End              string   `xml:"date_range>end"`
	Errors           []string `xml:"error"`
	Generator        string   `xml:"generator"`
}

type dmarcPolicy struct {
	Domain          string `xml:"domain"`
	ADKIM           string `xml:"adkim"`
	ASPF            string `xml:"aspf"`
	P               string `xml:"p"`
	SP              string `xml:"sp"`
	NP              string `xml:"np"`
	PCT             string `xml:"pct"`
	FO              string `xml:"fo"`
	Testing         string `xml:"testing"`
	DiscoveryMethod string `xml:"discovery_method"`
}

type dmarcIdentifiers struct {
	HeaderFrom   string `xml:"header_from"`
	EnvelopeFrom string `xml:"envelope_from"`
	EnvelopeTo   string `xml:"envelope_to"`
}

type dmarcRecord struct {
	SourceIP    string `xml:"row>source_ip"`
	Count       string `xml:"row>count"`
	Disposition string `xml:"row>policy_evaluated>disposition"`
	DKIM        string `xml:"row>policy_evaluated>dkim"`
	SPF         string `xml:"row>policy_evaluated>spf"`
	Reasons     []struct {
		Type    string `xml:"type"`
		Comment string `xml:"comment"`
	} `xml:"row>policy_evaluated>reason"`
	Identifiers dmarcIdentifiers  `xml:"identifiers"`
	Identities  dmarcIdentifiers  `xml:"identities"` // pre-RFC draft
	DKIMResults []dmarcAuthResult `xml:"auth_results>dkim"`
	SPFResults  []dmarcAuthResult `xml:"auth_results>spf"`
}

// dmarcAuthResult is one DKIM signature (with a selector) or SPF check
// (with a scope) of auth_results.
type dmarcAuthResult struct {
	Domain      string `xml:"domain"`
	Selector    string `xml:"selector"`
	Scope       string `xml:"scope"`
	Result      string `xml:"result"`
	HumanResult string `xml:"human_result"`
}

// dmarcNamespace is RFC 9990's.
const dmarcNamespace = "urn:ietf:params:xml:ns:dmarc-2.0"

// dmarcReport is the state of one aggregate report while it streams by.
type dmarcReport struct {
	name      string
	namespace string // urn:ietf:params:xml:ns:dmarc-2.0 for RFC 9990
	version   string
	meta      dmarcMetadata
	policy    dmarcPolicy
	problems  []string
}

// decodeDMARC streams one aggregate report record by record: the tree is
// never held whole. A root other than <feedback> is no report.
func (x *extraction) decodeDMARC(r io.Reader, name string) {
	if !x.opts.wants(KindDMARCAggregate) {
		return
	}
	text, err := utf8XML(r)
	if err != nil {
		x.found(KindDMARCAggregate)
		x.errorf("%s: %v", quoteName(name), err)
		return
	}
	budget := &elementBudget{r: text, left: maxElementBytes}
	d := xml.NewDecoder(budget)
	d.Strict = true
	d.CharsetReader = passThroughCharset
	// d.Entity stays nil: only the five predefined entities exist, so a
	// DTD's entities (billion laughs, external SYSTEM entities) are never
	// expanded; a reference to one is a syntax error.

	root, err := firstElement(d)
	if _, isLimit := asLimit(err); isLimit {
		x.readFailed(err, name) // a limit, not a broken or foreign document
		return
	}
	if err != nil || root.Name.Local != "feedback" {
		return
	}
	x.found(KindDMARCAggregate)
	rep := &dmarcReport{name: name, namespace: root.Name.Space}
	start := x.out.Len()
	err = x.dmarcRows(d, budget, rep)
	if text.replaced > 0 {
		rep.problems = append(rep.problems, fmt.Sprintf("%d invalid UTF-8 sequences replaced", text.replaced))
		x.errorf("%s: %d invalid UTF-8 sequences replaced by U+FFFD", quoteName(name), text.replaced)
	}
	partial := err != nil
	if err != nil {
		x.readFailed(fmt.Errorf("XML: %w", err), name)
	}
	x.seal(start, rep.sealMeta(partial))
}

// maxElementBytes bounds the XML read for one child of <feedback> (a
// record, the metadata, or text and comments between them): the decoder
// holds an element whole while it decodes it, so this keeps the memory of
// a report with one endless element small.
const maxElementBytes = 1 << 20

// elementBudget fails the read past maxElementBytes since the last reset.
type elementBudget struct {
	r    io.Reader
	left int64
}

func (b *elementBudget) reset() { b.left = maxElementBytes }

func (b *elementBudget) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, &limitError{LimitDecompressedBytes, fmt.Sprintf("one XML element is larger than %d bytes", maxElementBytes)}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// firstElement skips the prolog (declaration, comments, DOCTYPE).
func firstElement(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se, nil
		}
	}
}

// dmarcRows reads the children of <feedback> and emits each <record> as it
// is decoded.
func (x *extraction) dmarcRows(d *xml.Decoder, budget *elementBudget, rep *dmarcReport) error {
	rows := 0
	for {
		budget.reset()
		tok, err := d.Token()
		if err == io.EOF {
			return errors.New("truncated: </feedback> missing")
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			if err := x.dmarcElement(d, t, rep, &rows); err != nil {
				return err
			}
		}
	}
}

func (x *extraction) dmarcElement(d *xml.Decoder, t xml.StartElement, rep *dmarcReport, rows *int) error {
	switch t.Name.Local {
	case "version":
		return d.DecodeElement(&rep.version, &t)
	case "report_metadata":
		return d.DecodeElement(&rep.meta, &t)
	case "policy_published":
		return d.DecodeElement(&rep.policy, &t)
	case "record":
		if *rows >= x.limits.MaxRows {
			return &limitError{LimitRows, fmt.Sprintf("more than %d rows in one report", x.limits.MaxRows)}
		}
		var rec dmarcRecord
		if err := d.DecodeElement(&rec, &t); err != nil {
			return err
		}
		*rows++
		x.dmarcRow(&rec, rep)
		return nil
	}
	return d.Skip()
}

// dmarcRow emits one <record>. The row is WARN when DMARC failed: neither
// the DKIM nor the SPF evaluation passed.
func (x *extraction) dmarcRow(rec *dmarcRecord, rep *dmarcReport) {
	warn := !isPass(rec.DKIM) && !isPass(rec.SPF)
	lr := x.newRow(EventDMARCRecord, warn)
	a := lr.Attributes()
	ids := rec.Identifiers
	if ids == (dmarcIdentifiers{}) {
		ids = rec.Identities
	}
	count, err := strconv.ParseInt(strings.TrimSpace(rec.Count), 10, 64)
	if err != nil {
		rep.problems = appendOnce(rep.problems, fmt.Sprintf("row count %q is not a number", valid(rec.Count)))
	}
	a.PutInt("dmarc.count", count)
	putStr(a, "source.address", rec.SourceIP)
	putStr(a, "dmarc.disposition", rec.Disposition)
	putStr(a, "dmarc.dkim", rec.DKIM)
	putStr(a, "dmarc.spf", rec.SPF)
	putStr(a, "dmarc.header_from", ids.HeaderFrom)
	putStr(a, "dmarc.envelope_from", ids.EnvelopeFrom)
	putStr(a, "dmarc.envelope_to", ids.EnvelopeTo)
	putAuthAttrs(a, "dmarc.auth.dkim.", "selector", rec.DKIMResults, func(r dmarcAuthResult) string { return r.Selector })
	putAuthAttrs(a, "dmarc.auth.spf.", "scope", rec.SPFResults, func(r dmarcAuthResult) string { return r.Scope })
	var oType, oComment []string
	for _, r := range rec.Reasons {
		oType, oComment = append(oType, r.Type), append(oComment, r.Comment)
	}
	putStrs(a, "dmarc.override.type", oType)
	putStrs(a, "dmarc.override.comment", oComment)

	body := lr.Body().SetEmptyMap()
	row := body.PutEmptyMap("record")
	putStr(row, "source_ip", rec.SourceIP)
	row.PutInt("count", count)
	pe := row.PutEmptyMap("policy_evaluated")
	putStr(pe, "disposition", rec.Disposition)
	putStr(pe, "dkim", rec.DKIM)
	putStr(pe, "spf", rec.SPF)
	if len(rec.Reasons) > 0 {
		rs := pe.PutEmptySlice("reason")
		for _, r := range rec.Reasons {
			m := rs.AppendEmpty().SetEmptyMap()
			putStr(m, "type", r.Type)
			putStr(m, "comment", r.Comment)
		}
	}
	idm := row.PutEmptyMap("identifiers")
	putStr(idm, "header_from", ids.HeaderFrom)
	putStr(idm, "envelope_from", ids.EnvelopeFrom)
	putStr(idm, "envelope_to", ids.EnvelopeTo)
	ar := row.PutEmptyMap("auth_results")
	putAuthBody(ar, "dkim", rec.DKIMResults)
	putAuthBody(ar, "spf", rec.SPFResults)
	for _, tok := range []string{rec.DKIM, rec.SPF} {
		if isPass(tok) && strings.TrimSpace(tok) != "pass" {
			rep.problems = appendOnce(rep.problems, fmt.Sprintf("result token %q is not lower case", valid(tok)))
		}
	}
}

// putAuthAttrs writes one list attribute per field of the results: the
// domains, the selectors or scopes (detail), the results.
func putAuthAttrs(a pcommon.Map, prefix, detailName string, results []dmarcAuthResult, detail func(dmarcAuthResult) string) {
	var domains, details, outcomes []string
	for _, r := range results {
		domains, details, outcomes = append(domains, r.Domain), append(details, detail(r)), append(outcomes, r.Result)
	}
	putStrs(a, prefix+"domain", domains)
	putStrs(a, prefix+detailName, details)
	putStrs(a, prefix+"result", outcomes)
}

// putAuthBody writes the results as a list of maps; empty fields (a DKIM
// result has no scope) are left out.
func putAuthBody(m pcommon.Map, key string, results []dmarcAuthResult) {
	if len(results) == 0 {
		return
	}
	s := m.PutEmptySlice(key)
	for _, r := range results {
		rm := s.AppendEmpty().SetEmptyMap()
		putStr(rm, "domain", r.Domain)
		putStr(rm, "selector", r.Selector)
		putStr(rm, "scope", r.Scope)
		putStr(rm, "result", r.Result)
		putStr(rm, "human_result", r.HumanResult)
	}
}

// sealMeta is what every row of the report gets once the report is read.
func (rep *dmarcReport) sealMeta(partial bool) reportMeta {
	m := rep.meta
	id := unbracket(m.ReportID)
	if id != strings.TrimSpace(m.ReportID) {
		rep.problems = append(rep.problems, "report_id in angle brackets")
	}
	if rep.namespace == dmarcNamespace && strings.TrimSpace(rep.version) == "" {
		rep.problems = append(rep.problems, "version missing (RFC 9990 requires it)")
	}
	org := strings.TrimSpace(m.OrgName)
	if org == "" {
		rep.problems = append(rep.problems, "empty org_name")
	}
	begin, end := unixTime(m.Begin, "begin", &rep.problems), unixTime(m.End, "end", &rep.problems)
	if !begin.IsZero() && !end.IsZero() && end.Sub(begin) > 24*time.Hour {
		rep.problems = append(rep.problems, fmt.Sprintf("date_range spans %s, more than a day", end.Sub(begin)))
	}
	pol := rep.policy
	return reportMeta{
		kind:     KindDMARCAggregate,
		reporter: org,
		id:       id,
		begin:    begin,
		partial:  partial,
		attrs: func(a pcommon.Map) {
			putStr(a, "dmarc.report.org_name", org)
			putStr(a, "dmarc.report.id", id)
			putTime(a, "dmarc.report.begin", begin)
			putTime(a, "dmarc.report.end", end)
			putStr(a, "dmarc.policy.domain", pol.Domain)
			putStr(a, "dmarc.policy.p", pol.P)
			putStr(a, "dmarc.policy.sp", pol.SP)
			putStr(a, "dmarc.policy.np", pol.NP)
			putStr(a, "dmarc.policy.adkim", pol.ADKIM)
			putStr(a, "dmarc.policy.aspf", pol.ASPF)
			if pct, err := strconv.Atoi(strings.TrimSpace(pol.PCT)); err == nil {
				a.PutInt("dmarc.policy.pct", int64(pct))
			}
			putStr(a, "dmarc.policy.testing", pol.Testing)
		},
		body: func(b pcommon.Map) {
			rm := b.PutEmptyMap("report_metadata")
			putStr(rm, "version", rep.version)
			putStr(rm, "org_name", m.OrgName)
			putStr(rm, "email", m.Email)
			putStr(rm, "extra_contact_info", m.ExtraContactInfo)
			putStr(rm, "report_id", m.ReportID)
			putTime(rm, "begin", begin)
			putTime(rm, "end", end)
			putStrs(rm, "error", m.Errors)
			putStr(rm, "generator", m.Generator)
			pp := b.PutEmptyMap("policy_published")
			for _, kv := range [][2]string{{"domain", pol.Domain}, {"adkim", pol.ADKIM}, {"aspf", pol.ASPF}, {"p", pol.P}, {"sp", pol.SP}, {"np", pol.NP}, {"pct", pol.PCT}, {"fo", pol.FO}, {"testing", pol.Testing}, {"discovery_method", pol.DiscoveryMethod}} {
				putStr(pp, kv[0], kv[1])
			}
			putStr(b, "attachment", rep.name)
			putStrs(b, "problems", rep.problems)
		},
	}
}

// unixTime reads a date_range bound (seconds since the epoch).
func unixTime(s, what string, problems *[]string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		*problems = append(*problems, "date_range "+what+" missing")
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		*problems = append(*problems, fmt.Sprintf("date_range %s %q is not a time", what, valid(s)))
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

func appendOnce(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}
