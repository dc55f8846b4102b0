package mailconv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/textproto"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// fillRecord writes the body map (or its JSON), the attributes and the
// timestamps. See README.md for the layout.
// It returns the final list of parse errors, which includes problems found
// while decoding header fields here.
func fillRecord(lr plog.LogRecord, env Envelope, msg *message, size int64, opts Options) []string {
	h := msg.header
	errs := &msg.errs // decoding problems found here are reported too

	subject := decodeHeaderValue("Subject", h.get("Subject"), errs)
	from := parseAddressList("From", h.get("From"), errs)
	to := parseAddressList("To", h.get("To"), errs)
	cc := parseAddressList("Cc", h.get("Cc"), errs)
	replyTo := parseAddressList("Reply-To", h.get("Reply-To"), errs)

	var date time.Time
	if raw := h.get("Date"); raw != "" {
		if d, err := parseDate(raw); err == nil {
			date = d
		} else {
			errs.addf("header Date: unparsable %q", snippet([]byte(raw)))
		}
	}

	text, html := string(msg.text.buf), string(msg.html.buf)
	if !msg.text.present && msg.html.present {
		text = html
		if opts.HTMLToText {
			text = htmlToText(html)
		}
	}
	truncated := msg.text.truncated || msg.html.truncated
	// The mail client: X-Mailer, or User-Agent, which Thunderbird and
	// others send instead.
	xMailer := ""
	for _, name := range []string{"X-Mailer", "User-Agent"} {
		if h.has(name) {
			xMailer = decodeHeaderValue(name, h.get(name), errs)
			break
		}
	}
	headers := pcommon.NewMap()
	putHeaders(headers, h, errs)

	// Collected last so header decoding problems above are included.
	parseErrors := errs.list()

	body := pcommon.NewMap()
	body.PutStr("from", valid(env.From))
	putStrings(body, "to", env.To)
	body.PutStr("subject", subject)
	body.PutStr("body", text)
	if msg.html.present {
		body.PutStr("html", html)
	}
	headers.MoveTo(body.PutEmptyMap("headers"))
	body.PutStr("remoteAddr", valid(env.RemoteAddr))
	putAddrs(body, "header_from", from)
	putAddrs(body, "header_to", to)
	putAddrs(body, "cc", cc)
	putAddrs(body, "reply_to", replyTo)
	messageID := firstID(h.get("Message-ID"))
	if messageID != "" {
		body.PutStr("message_id", messageID)
	}
	if !date.IsZero() {
		body.PutStr("date", date.Format(time.RFC3339))
	}
	if id := firstID(h.get("In-Reply-To")); id != "" {
		body.PutStr("in_reply_to", id)
	}
	if refs := msgIDs(h.get("References")); len(refs) > 0 {
		putStrings(body, "references", refs)
	}
	if len(msg.attachments) > 0 {
		putAttachments(body.PutEmptySlice("attachments"), msg.attachments)
	}
	putClient(body.PutEmptyMap("client"), env)
	body.PutStr("received_at", env.ReceivedAt.Format(time.RFC3339Nano))
	body.PutInt("size", size)
	if len(parseErrors) > 0 {
		putStrings(body, "parse_errors", parseErrors)
	}

	if env.Enrich != nil {
		env.Enrich(lr.Attributes(), body)
	}
	if opts.BodyFormat == BodyFormatJSON {
		lr.Body().SetStr(mapJSON(body))
	} else {
		body.MoveTo(lr.Body().SetEmptyMap())
	}

	attrs := lr.Attributes()
	host, port := splitRemoteAddr(env.RemoteAddr)
	if host != "" {
		attrs.PutStr("client.address", valid(host))
	}
	if port >= 0 {
		attrs.PutInt("client.port", int64(port))
	}
	attrs.PutStr("smtp.helo", valid(env.Helo))
	attrs.PutStr("smtp.mail_from", valid(env.From))
	putStrings(attrs, "smtp.rcpt_to", env.To)
	attrs.PutStr("email.subject", subject)
	if messageID != "" {
		attrs.PutStr("email.message_id", messageID)
	}
	putStrings(attrs, "email.from.address", addresses(from))
	putStrings(attrs, "email.to.address", addresses(to))
	if len(cc) > 0 {
		putStrings(attrs, "email.cc.address", addresses(cc))
	}
	if len(replyTo) > 0 {
		putStrings(attrs, "email.reply_to.address", addresses(replyTo))
	}
	attrs.PutStr("email.content_type", valid(msg.contentType))
	if xMailer != "" {
		attrs.PutStr("email.x_mailer", xMailer)
	}
	if !date.IsZero() {
		attrs.PutStr("email.origination_timestamp", date.Format(time.RFC3339))
	}
	attrs.PutStr("email.delivery_timestamp", env.ReceivedAt.Format(time.RFC3339Nano))
	attrs.PutInt("email.attachments.count", int64(len(msg.attachments)))
	attrs.PutInt("smtp.message.size", size)
	if env.TLSVersion != "" {
		attrs.PutStr("tls.protocol.version", valid(env.TLSVersion))
	}
	if env.TLSCipher != "" {
		attrs.PutStr("tls.cipher", valid(env.TLSCipher))
	}
	if env.AuthUser != "" {
		attrs.PutStr("user.name", valid(env.AuthUser))
	}
	if len(parseErrors) > 0 {
		attrs.PutStr("email.parse_error", strings.Join(parseErrors, "; "))
	}
	if truncated {
		attrs.PutBool("email.body.truncated", true)
	}

	ts := env.ReceivedAt
	if !date.IsZero() {
		ts = date
	}
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(env.ReceivedAt))
	return parseErrors
}

func firstID(raw string) string {
	if ids := msgIDs(raw); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// putHeaders groups top-level fields under their canonical name
// (X-SPAM-FLAG and x-spam-flag become X-Spam-Flag), so that a processor
// looks a header up under one spelling; values are decoded and kept in order
// of appearance.
func putHeaders(m pcommon.Map, h header, errs *errorList) {
	slots := map[string]pcommon.Slice{}
	for _, f := range h {
		key := valid(textproto.CanonicalMIMEHeaderKey(f.name))
		s, ok := slots[key]
		if !ok {
			s = m.PutEmptySlice(key)
			slots[key] = s
		}
		s.AppendEmpty().SetStr(decodeHeaderValue(f.name, f.value, errs))
	}
}

func putStrings(m pcommon.Map, key string, values []string) {
	s := m.PutEmptySlice(key)
	s.EnsureCapacity(len(values))
	for _, v := range values {
		s.AppendEmpty().SetStr(valid(v))
	}
}

func putAddrs(m pcommon.Map, key string, list []addr) {
	if len(list) == 0 {
		return
	}
	s := m.PutEmptySlice(key)
	for _, a := range list {
		am := s.AppendEmpty().SetEmptyMap()
		am.PutStr("name", a.name)
		am.PutStr("address", a.address)
	}
}

func addresses(list []addr) []string {
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, a.address)
	}
	return out
}

func putAttachments(s pcommon.Slice, list []attachment) {
	for _, a := range list {
		m := s.AppendEmpty().SetEmptyMap()
		m.PutStr("filename", a.filename)
		m.PutStr("content_type", valid(a.contentType))
		m.PutInt("size", a.size)
		m.PutStr("sha256", a.sha256)
		if a.disposition != "" {
			m.PutStr("disposition", valid(a.disposition))
		}
		if a.contentID != "" {
			m.PutStr("content_id", a.contentID)
		}
		if a.isMessage {
			m.PutStr("subject", a.subject)
			m.PutStr("from", a.messageFrom)
		}
		if a.content != nil {
			m.PutStr("content", base64.StdEncoding.EncodeToString(a.content))
		}
		if a.contentOmitted {
			m.PutBool("content_omitted", true)
		}
	}
}

func putClient(m pcommon.Map, env Envelope) {
	host, port := splitRemoteAddr(env.RemoteAddr)
	putNonEmpty(m, "address", host)
	if port >= 0 {
		m.PutInt("port", int64(port))
	}
	putNonEmpty(m, "helo", env.Helo)
	putNonEmpty(m, "tls_version", env.TLSVersion)
	putNonEmpty(m, "tls_cipher", env.TLSCipher)
	putNonEmpty(m, "auth_user", env.AuthUser)
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, valid(v))
	}
}

// mapJSON encodes the body map with sorted keys and without HTML escaping
// (mail bodies are full of <, > and &).
func mapJSON(m pcommon.Map) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m.AsRaw()); err != nil {
		return "{}"
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
