package mailconv

import (
	"net/textproto"
	"time"
	"unsafe"
)

// decoded is what the record shows of the top-level header, decoded: the
// first step of the conversion after parsing. writeRecord (record.go) only
// writes it out.
type decoded struct {
	subject, xMailer      string
	text, html            string // body text (or its HTML fallback) and HTML
	truncated             bool   // text or html was cut at MaxBodyBytes
	from, to, cc, replyTo []addr
	date                  time.Time // zero when absent or unparsable
	messageID, inReplyTo  string
	references            []string
	// headers are the top-level fields with canonical names and decoded
	// values, in order of appearance.
	headers     header
	parseErrors []string // final: includes the problems found while decoding
}

// decode fills msg.decoded. Problems are added to msg.errs in the order the
// record has always listed them: Subject, the address fields, Date, the
// mail client, then the other fields in order of appearance.
func (msg *message) decode(opts Options) {
	h := msg.header
	d := &msg.decoded
	d.text, d.html = finalString(msg.text.buf), finalString(msg.html.buf)
	if !msg.text.present && msg.html.present {
		d.text = d.html
		if opts.HTMLToText {
			d.text = htmlToText(d.html)
		}
	}
	d.truncated = msg.text.truncated || msg.html.truncated
	d.headers = make(header, len(h))
	d.subject = msg.decodedValue(h.index("Subject"), "Subject")
	d.from = parseAddressList("From", h.get("From"), &msg.errs)
	d.to = parseAddressList("To", h.get("To"), &msg.errs)
	d.cc = parseAddressList("Cc", h.get("Cc"), &msg.errs)
	d.replyTo = parseAddressList("Reply-To", h.get("Reply-To"), &msg.errs)
	if raw := h.get("Date"); raw != "" {
		if date, err := parseDate(raw); err == nil {
			d.date = date
		} else {
			msg.errs.addf("header Date: unparsable %q", snippet([]byte(raw)))
		}
	}
	// The mail client: X-Mailer, or User-Agent, which Thunderbird and
	// others send instead.
	if i := h.index("X-Mailer"); i >= 0 {
		d.xMailer = msg.decodedValue(i, "X-Mailer")
	} else {
		d.xMailer = msg.decodedValue(h.index("User-Agent"), "User-Agent")
	}
	for i := range h {
		msg.decodedValue(i, h[i].name)
	}
	d.messageID = firstID(h.get("Message-ID"))
	d.inReplyTo = firstID(h.get("In-Reply-To"))
	d.references = msgIDs(h.get("References"))
	d.parseErrors = msg.errs.list()
}

// decodedValue decodes field i on first use (reporting problems under
// name) and returns its value; "" for i < 0.
func (msg *message) decodedValue(i int, name string) string {
	if i < 0 {
		return ""
	}
	d := &msg.decoded.headers[i]
	if d.name == "" { // field names are never empty: not decoded yet
		f := msg.header[i]
		*d = field{
			name:  valid(textproto.CanonicalMIMEHeaderKey(f.name)),
			value: decodeHeaderValue(name, f.value, &msg.errs),
		}
	}
	return d.value
}

func firstID(raw string) string {
	if ids := msgIDs(raw); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// finalString returns b as a string without copying it (a body can be
// megabytes). The text buffers are final once parsing is done: nothing
// writes to them after decode, and they are never pooled. A buffer that is
// mostly spare capacity is copied instead, so that a record queued in the
// pipeline does not hold up to twice its text.
func finalString(b []byte) string {
	if cap(b)-len(b) > max(len(b)/4, 4<<10) {
		return string(b)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
