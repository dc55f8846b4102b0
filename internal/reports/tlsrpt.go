package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// RFC 8460 section 4.4.
type tlsMeta struct {
	OrgName     string `json:"organization-name"`
	ContactInfo string `json:"contact-info"`
	ReportID    string `json:"report-id"`
	DateRange   struct {
		Start string `json:"start-datetime"`
		End   string `json:"end-datetime"`
	} `json:"date-range"`
}

type tlsPolicy struct {
	Policy struct {
		Type   string          `json:"policy-type"`
		String []string        `json:"policy-string"`
		Domain string          `json:"policy-domain"`
		MXHost json.RawMessage `json:"mx-host"` // a string or a list (erratum 6241)
	} `json:"policy"`
	Summary struct {
		Successful int64 `json:"total-successful-session-count"`
		Failed     int64 `json:"total-failure-session-count"`
	} `json:"summary"`
	FailureDetails []tlsFailure `json:"failure-details"`
}

type tlsFailure struct {
	ResultType          string `json:"result-type"`
	SendingMTAIP        string `json:"sending-mta-ip"`
	ReceivingMXHostname string `json:"receiving-mx-hostname"`
	ReceivingMXHelo     string `json:"receiving-mx-helo"`
	ReceivingIP         string `json:"receiving-ip"`
	FailedSessionCount  int64  `json:"failed-session-count"`
	AdditionalInfo      string `json:"additional-information"`
	FailureReasonCode   string `json:"failure-reason-code"`
}

// decodeTLSRPT streams one TLS report policy by policy. Its metadata may
// follow the policies (JSON key order is free), so rows are sealed at the
// end. A JSON object with neither policies nor an organization is no
// report.
func (x *extraction) decodeTLSRPT(r io.Reader, name string) {
	if !x.opts.wants(KindTLSRPT) {
		return
	}
	d := json.NewDecoder(r)
	tok, err := d.Token()
	if _, isLimit := asLimit(err); isLimit {
		x.readFailed(err, name)
		return
	}
	if err != nil || tok != json.Delim('{') {
		return
	}
	start := x.out.Len()
	var meta tlsMeta
	isReport := false
	err = x.tlsMembers(d, &meta, &isReport)
	if !isReport {
		return // rows are only emitted under "policies", which makes a report
	}
	x.found(KindTLSRPT)
	if err != nil {
		x.readFailed(fmt.Errorf("JSON: %w", err), name)
	}
	x.seal(start, tlsReportMeta(meta, name, err != nil))
}

// tlsMembers reads the members of the report object.
func (x *extraction) tlsMembers(d *json.Decoder, meta *tlsMeta, isReport *bool) error {
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		switch key {
		case "organization-name", "contact-info", "report-id", "date-range":
			*isReport = true
			var raw json.RawMessage
			if err := d.Decode(&raw); err != nil {
				return err
			}
			// Decode the member alone into the struct: wrong types
			// leave the field empty instead of losing the report.
			_ = json.Unmarshal([]byte(`{"`+key+`":`+string(raw)+`}`), meta)
		case "policies":
			*isReport = true
			if err := x.tlsPolicies(d); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := d.Decode(&skip); err != nil {
				return err
			}
		}
	}
	if _, err := d.Token(); err != nil { // the closing brace
		if errors.Is(err, io.EOF) {
			return errors.New("truncated")
		}
		return err
	}
	return nil
}

func (x *extraction) tlsPolicies(d *json.Decoder) error {
	if tok, err := d.Token(); err != nil || tok != json.Delim('[') {
		if err == nil {
			err = errors.New(`"policies" is not a list`)
		}
		return err
	}
	rows := 0
	for d.More() {
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return err
		}
		var p tlsPolicy
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("policy %d: %w", rows, err)
		}
		if rows+1+len(p.FailureDetails) > x.limits.MaxRows {
			return &limitError{LimitRows, fmt.Sprintf("more than %d rows in one report", x.limits.MaxRows)}
		}
		rows += 1 + len(p.FailureDetails)
		x.tlsRows(&p, raw)
	}
	_, err := d.Token() // ]
	return err
}

// mxHosts accepts the string of RFC 8460 and the list of erratum 6241.
func mxHosts(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var list []string
	_ = json.Unmarshal(raw, &list)
	return list
}

// tlsRows emits the policy and one row per failure-detail. The policy row
// is WARN when sessions failed; failure rows are WARN.
func (x *extraction) tlsRows(p *tlsPolicy, raw json.RawMessage) {
	policyAttrs := func(a pcommon.Map) {
		putStr(a, "tlsrpt.policy.type", p.Policy.Type)
		putStr(a, "tlsrpt.policy.domain", p.Policy.Domain)
		putStrs(a, "tlsrpt.policy.mx_host", mxHosts(p.Policy.MXHost))
	}
	lr := x.newRow(EventTLSRPTPolicy, p.Summary.Failed > 0)
	a := lr.Attributes()
	policyAttrs(a)
	a.PutInt("tlsrpt.sessions.successful", p.Summary.Successful)
	a.PutInt("tlsrpt.sessions.failed", p.Summary.Failed)
	var generic any
	if json.Unmarshal(raw, &generic) == nil {
		if m, ok := generic.(map[string]any); ok {
			_ = lr.Body().SetEmptyMap().PutEmptyMap("policy").FromRaw(m)
		}
	}
	for _, f := range p.FailureDetails {
		lr := x.newRow(EventTLSRPTFailure, true)
		a := lr.Attributes()
		policyAttrs(a)
		putStr(a, "tlsrpt.failure.result_type", f.ResultType)
		a.PutInt("tlsrpt.failed_sessions", f.FailedSessionCount)
		putStr(a, "source.address", f.SendingMTAIP)
		putStr(a, "destination.address", f.ReceivingIP)
		putStr(a, "tlsrpt.failure.receiving_mx_hostname", f.ReceivingMXHostname)
		putStr(a, "tlsrpt.failure.receiving_mx_helo", f.ReceivingMXHelo)
		putStr(a, "tlsrpt.failure.reason_code", f.FailureReasonCode)
		b := lr.Body().SetEmptyMap()
		fm := b.PutEmptyMap("failure_details")
		putStr(fm, "result-type", f.ResultType)
		putStr(fm, "sending-mta-ip", f.SendingMTAIP)
		putStr(fm, "receiving-mx-hostname", f.ReceivingMXHostname)
		putStr(fm, "receiving-mx-helo", f.ReceivingMXHelo)
		putStr(fm, "receiving-ip", f.ReceivingIP)
		fm.PutInt("failed-session-count", f.FailedSessionCount)
		putStr(fm, "additional-information", f.AdditionalInfo)
		putStr(fm, "failure-reason-code", f.FailureReasonCode)
	}
}

func tlsReportMeta(m tlsMeta, name string, partial bool) reportMeta {
	begin, _ := time.Parse(time.RFC3339, strings.TrimSpace(m.DateRange.Start))
	end, _ := time.Parse(time.RFC3339, strings.TrimSpace(m.DateRange.End))
	return reportMeta{
		kind:     KindTLSRPT,
		reporter: m.OrgName,
		id:       m.ReportID,
		begin:    begin,
		partial:  partial,
		attrs: func(a pcommon.Map) {
			putStr(a, "tlsrpt.report.org_name", m.OrgName)
			putStr(a, "tlsrpt.report.id", m.ReportID)
		},
		body: func(b pcommon.Map) {
			rm := b.PutEmptyMap("report")
			putStr(rm, "organization-name", m.OrgName)
			putStr(rm, "contact-info", m.ContactInfo)
			putStr(rm, "report-id", m.ReportID)
			putTime(rm, "start-datetime", begin)
			putTime(rm, "end-datetime", end)
			putStr(b, "attachment", name)
		},
	}
}
