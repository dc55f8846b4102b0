package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// finish emits the records of the report parts that were read whole:
// feedback reports and delivery status notifications, which need the
// returned message's header that usually follows them.
func (x *extraction) finish() {
	var orig fieldBlock
	if len(x.returned) > 0 {
		orig = x.returned[0]
	}
	for i, block := range x.feedback {
		x.found(KindFeedback)
		if i >= x.limits.MaxRows {
			x.limitHit(LimitRows, "more than %d feedback reports", x.limits.MaxRows)
			break
		}
		x.feedbackRow(i, block, orig)
	}
	for _, d := range x.dsn {
		x.found(KindDSN)
		x.dsnRows(d, orig)
	}
}

// feedbackRow emits one message/feedback-report part (RFC 5965, with the
// DMARC failure report fields of RFC 6591 / RFC 9991). It is WARN for
// authentication failure reports.
func (x *extraction) feedbackRow(index int, b fieldBlock, orig fieldBlock) {
	ftype := strings.TrimSpace(b.get("Feedback-Type"))
	authFailure := b.get("Auth-Failure")
	start := x.out.Len()
	lr := x.newRow(EventFeedbackReport, strings.EqualFold(ftype, "auth-failure") || authFailure != "")
	a := lr.Attributes()
	putStr(a, "email.feedback.type", ftype)
	putStr(a, "source.address", strings.TrimSpace(b.get("Source-IP")))
	putStr(a, "email.feedback.original_mail_from", unbracket(b.get("Original-Mail-From")))
	var rcpts, domains []string
	for _, v := range b.all("Original-Rcpt-To") {
		rcpts = append(rcpts, unbracket(v))
	}
	for _, v := range b.all("Reported-Domain") {
		domains = append(domains, strings.TrimSpace(v))
	}
	putStrs(a, "email.feedback.original_rcpt_to", rcpts)
	putStrs(a, "email.feedback.reported_domain", domains)
	arrival := b.get("Arrival-Date")
	if arrival == "" {
		arrival = b.get("Received-Date") // the draft's name
	}
	arrivalTime := parseMailDate(arrival)
	if !arrivalTime.IsZero() {
		putTime(a, "email.feedback.arrival_date", arrivalTime)
	} else {
		putStr(a, "email.feedback.arrival_date", strings.TrimSpace(arrival))
	}
	putStr(a, "email.feedback.auth_failure", strings.TrimSpace(authFailure))
	putStr(a, "email.feedback.dkim.domain", strings.TrimSpace(b.get("DKIM-Domain")))
	putStr(a, "email.feedback.dkim.selector", strings.TrimSpace(b.get("DKIM-Selector")))

	body := lr.Body().SetEmptyMap()
	putFields(body.PutEmptyMap("feedback_report"), b)
	if len(orig) > 0 {
		putFields(body.PutEmptyMap("reported_headers"), orig)
		putStr(body, "reported_message_id", unbracket(orig.get("Message-ID")))
	}
	reporter := b.get("Reporting-MTA")
	if reporter == "" {
		reporter = x.email.MailFrom
	}
	// One email may carry several feedback parts: the part's index
	// tells their rows apart.
	id := x.reportID(b) + "#" + strconv.Itoa(index)
	x.seal(start, reportMeta{kind: KindFeedback, reporter: reporter, id: id, begin: arrivalTime})
}

// reportID names a report without an id of its own (feedback, DSN): the
// carrying email's Message-ID, or a digest of the report when there is none.
func (x *extraction) reportID(b fieldBlock) string {
	if x.email.MessageID != "" {
		return x.email.MessageID
	}
	h := sha256.New()
	for _, f := range b {
		h.Write([]byte(f.name + ":" + f.value + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// putFields writes fields grouped by name, values in order.
func putFields(m pcommon.Map, b fieldBlock) {
	slots := map[string]pcommon.Slice{}
	for _, f := range b {
		key := valid(f.name)
		s, ok := slots[key]
		if !ok {
			s = m.PutEmptySlice(key)
			slots[key] = s
		}
		s.AppendEmpty().SetStr(valid(f.value))
	}
}

// parseMailDate reads an RFC 5322 date; zero when it cannot.
func parseMailDate(s string) time.Time {
	t, err := mail.ParseDate(strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
