package reports

import (
	"regexp"
	"strings"
)

// dsnReport is one message/delivery-status part: the per-message fields and
// one block per recipient (RFC 3464 section 2.1).
type dsnReport struct {
	message    fieldBlock
	recipients []fieldBlock
}

func parseDSN(data []byte) dsnReport {
	blocks := readFieldBlocks(data)
	var d dsnReport
	if len(blocks) == 0 {
		return d
	}
	d.message = blocks[0]
	d.recipients = blocks[1:]
	// A DSN without per-message fields starts straight with a recipient.
	if d.message.get("Final-Recipient") != "" {
		d.message, d.recipients = nil, blocks
	}
	return d
}

var statusCode = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}`)

// dsnRows emits one record per recipient block, whatever its Action. A
// failed or delayed delivery is WARN.
func (x *extraction) dsnRows(d dsnReport, orig fieldBlock) {
	start := x.out.Len()
	reporting := stripType(d.message.get("Reporting-MTA"))
	arrival := parseMailDate(d.message.get("Arrival-Date"))
	origID := unbracket(orig.get("Message-ID"))
	for i, rcpt := range d.recipients {
		if i >= x.limits.MaxRows {
			x.limitHit(LimitRows, "more than %d recipients in one delivery status report", x.limits.MaxRows)
			break
		}
		action := strings.TrimSpace(rcpt.get("Action"))
		status := strings.TrimSpace(rcpt.get("Status"))
		if m := statusCode.FindString(status); m != "" {
			status = m
		}
		act := strings.ToLower(action)
		warn := act == "failed" || act == "delayed" || strings.HasPrefix(status, "4") || strings.HasPrefix(status, "5")
		lr := x.newRow(EventDSNRecipient, warn)
		a := lr.Attributes()
		putStr(a, "email.dsn.recipient", stripType(rcpt.get("Final-Recipient")))
		putStr(a, "email.dsn.original_recipient", stripType(rcpt.get("Original-Recipient")))
		putStr(a, "email.dsn.action", action)
		putStr(a, "email.dsn.status", status)
		if status != "" {
			a.PutStr("email.dsn.status_class", valid(status[:1]))
		}
		putStr(a, "email.dsn.remote_mta", stripType(rcpt.get("Remote-MTA")))
		putStr(a, "email.dsn.diagnostic", stripType(rcpt.get("Diagnostic-Code")))
		putStr(a, "email.dsn.reporting_mta", reporting)
		putStr(a, "email.dsn.original_message_id", origID)
		body := lr.Body().SetEmptyMap()
		putFields(body.PutEmptyMap("per_message"), d.message)
		putFields(body.PutEmptyMap("per_recipient"), rcpt)
		if len(orig) > 0 {
			putFields(body.PutEmptyMap("returned_headers"), orig)
		}
	}
	x.seal(start, reportMeta{kind: KindDSN, reporter: reporting, id: x.reportID(d.message), begin: arrival})
}
