package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// EventNames of the derived records.
const (
	EventDMARCRecord    = "dmarc.aggregate.record"
	EventTLSRPTPolicy   = "tlsrpt.policy"
	EventTLSRPTFailure  = "tlsrpt.failure"
	EventFeedbackReport = "email.feedback_report"
	EventDSNRecipient   = "email.dsn.recipient"
)

// newRow appends a derived record carrying what every derived record
// copies from its email. Timestamp, uid and report metadata are set by seal
// once the whole report has been read: a report's metadata may come after
// its rows (JSON key order is free).
func (x *extraction) newRow(event string, warn bool) plog.LogRecord {
	lr := x.out.AppendEmpty()
	lr.SetEventName(event)
	if warn {
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	} else {
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
	}
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(x.email.ReceivedAt))
	attrs := lr.Attributes()
	if x.email.ClientAddress != "" {
		attrs.PutStr("client.address", valid(x.email.ClientAddress))
	}
	attrs.PutStr("smtp.mail_from", valid(x.email.MailFrom))
	if x.email.MessageID != "" {
		attrs.PutStr("email.message_id", valid(x.email.MessageID))
	}
	x.res.Rows++
	return lr
}

// reportMeta is what seal writes on every row of one report.
type reportMeta struct {
	kind     string
	reporter string
	id       string
	begin    time.Time
	partial  bool
	attrs    func(pcommon.Map) // report-level attributes
	body     func(pcommon.Map) // report-level body entries
}

// seal finishes the rows out[start:] of one report.
func (x *extraction) seal(start int, m reportMeta) {
	ts := m.begin
	if ts.IsZero() {
		ts = x.email.ReceivedAt
	}
	occurrence := x.occurrence(m)
	for i := start; i < x.out.Len(); i++ {
		lr := x.out.At(i)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		attrs := lr.Attributes()
		attrs.PutStr("log.record.uid", rowUID(m.kind, m.reporter, m.id, occurrence, i-start))
		if m.attrs != nil {
			m.attrs(attrs)
		}
		if m.partial {
			attrs.PutBool("email.report.partial", true)
		}
		if m.body != nil && lr.Body().Type() == pcommon.ValueTypeMap {
			m.body(lr.Body().Map())
		}
	}
	if m.partial {
		x.res.Partial = true
	}
}

// occurrence numbers the reports of one email that share kind, reporter and
// id: 0 for the first, which keeps its uids independent of the others.
func (x *extraction) occurrence(m reportMeta) int {
	if x.sealed == nil {
		x.sealed = map[string]int{}
	}
	key := m.kind + "\x00" + m.reporter + "\x00" + m.id
	n := x.sealed[key]
	x.sealed[key] = n + 1
	return n
}

// rowUID is deterministic, so that the rows of an email delivered twice
// (a retry after a 4xx) can be deduplicated downstream. occurrence tells
// apart reports of one email with the same identity; the first one's uids
// hash as if there were no other.
func rowUID(kind, reporter, id string, occurrence, index int) string {
	h := sha256.New()
	fields := []string{kind, reporter, id, strconv.Itoa(index)}
	if occurrence > 0 {
		fields = append(fields, strconv.Itoa(occurrence))
	}
	for _, s := range fields {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// putStr writes v without surrounding white space (XML reports indent
// their values), and nothing when that leaves it empty.
func putStr(m pcommon.Map, k, v string) {
	if v = strings.TrimSpace(v); v != "" {
		m.PutStr(k, valid(v))
	}
}

func putStrs(m pcommon.Map, k string, values []string) {
	if len(values) == 0 {
		return
	}
	s := m.PutEmptySlice(k)
	for _, v := range values {
		s.AppendEmpty().SetStr(valid(v))
	}
}

func putTime(m pcommon.Map, k string, t time.Time) {
	if !t.IsZero() {
		m.PutStr(k, t.UTC().Format(time.RFC3339))
	}
}

// isPass compares result tokens case-insensitively (some reporters write
// "Pass"); the attributes keep the token as written.
func isPass(token string) bool { return strings.EqualFold(strings.TrimSpace(token), "pass") }

// stripType removes the type prefix of a report field ("rfc822; a@b",
// "dns; mx.example.org", "smtp; 550 ...").
func stripType(v string) string {
	if t, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(strings.TrimSpace(t), " <@") {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(v)
}

// unbracket removes angle brackets around an id.
func unbracket(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}
