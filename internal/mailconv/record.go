package mailconv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// writeRecord writes the decoded message (decode.go), the envelope and the
// timestamps into lr: the second step of the conversion, which decodes
// nothing. See README.md for the layout.
func writeRecord(lr plog.LogRecord, env Envelope, msg *message, size int64, opts Options) {
	w := recordWriter{
		env:        env,
		msg:        msg,
		d:          &msg.decoded,
		size:       size,
		client:     clientAddrOf(env.Client),
		receivedAt: env.ReceivedAt.Format(time.RFC3339Nano),
	}
	if !w.d.date.IsZero() {
		w.date = w.d.date.Format(time.RFC3339)
	}
	if opts.BodyFormat == BodyFormatJSON {
		body := pcommon.NewMap()
		w.body(body)
		w.enrich(lr, body)
		lr.Body().SetStr(mapJSON(body))
	} else {
		body := lr.Body().SetEmptyMap()
		w.body(body)
		w.enrich(lr, body)
	}
	w.attributes(lr.Attributes())

	ts := env.ReceivedAt
	if !w.d.date.IsZero() {
		ts = w.d.date
	}
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(env.ReceivedAt))
}

// enrich runs the caller's Envelope.Enrich before the body is encoded.
func (w *recordWriter) enrich(lr plog.LogRecord, body pcommon.Map) {
	if w.env.Enrich != nil {
		w.env.Enrich(lr.Attributes(), body)
	}
}

// recordWriter holds what the body and the attributes share, formatted once.
type recordWriter struct {
	env        Envelope
	msg        *message
	d          *decoded
	size       int64
	client     clientAddr
	receivedAt string // env.ReceivedAt, RFC 3339 with nanoseconds
	date       string // the Date header, RFC 3339; "" when absent or invalid
}

// Upper bounds of the keys written, so maps are allocated once.
const (
	bodyKeys      = 20
	attributeKeys = 24
)

func (w *recordWriter) body(m pcommon.Map) {
	d := w.d
	m.EnsureCapacity(bodyKeys)
	m.PutStr("from", valid(w.env.From))
	putStrings(m, "to", w.env.To)
	m.PutStr("subject", d.subject)
	m.PutStr("body", d.text)
	if w.msg.html.present {
		m.PutStr("html", d.html)
	}
	putHeaders(m.PutEmptyMap("headers"), d.headers)
	m.PutStr("remoteAddr", w.client.hostPort)
	putAddrs(m, "header_from", d.from)
	putAddrs(m, "header_to", d.to)
	putAddrs(m, "cc", d.cc)
	putAddrs(m, "reply_to", d.replyTo)
	if d.messageID != "" {
		m.PutStr("message_id", d.messageID)
	}
	if w.date != "" {
		m.PutStr("date", w.date)
	}
	if d.inReplyTo != "" {
		m.PutStr("in_reply_to", d.inReplyTo)
	}
	if len(d.references) > 0 {
		putStrings(m, "references", d.references)
	}
	if len(w.msg.attachments) > 0 {
		putAttachments(m.PutEmptySlice("attachments"), w.msg.attachments)
	}
	w.putClient(m.PutEmptyMap("client"))
	m.PutStr("received_at", w.receivedAt)
	m.PutInt("size", w.size)
	if len(d.parseErrors) > 0 {
		putStrings(m, "parse_errors", d.parseErrors)
	}
}

func (w *recordWriter) attributes(attrs pcommon.Map) {
	d, env := w.d, w.env
	attrs.EnsureCapacity(attributeKeys)
	if w.client.ok {
		attrs.PutStr("client.address", w.client.host)
		attrs.PutInt("client.port", w.client.port)
	}
	attrs.PutStr("smtp.helo", valid(env.Helo))
	attrs.PutStr("smtp.mail_from", valid(env.From))
	putStrings(attrs, "smtp.rcpt_to", env.To)
	attrs.PutStr("email.subject", d.subject)
	if d.messageID != "" {
		attrs.PutStr("email.message_id", d.messageID)
	}
	putAddresses(attrs, "email.from.address", d.from)
	putAddresses(attrs, "email.to.address", d.to)
	if len(d.cc) > 0 {
		putAddresses(attrs, "email.cc.address", d.cc)
	}
	if len(d.replyTo) > 0 {
		putAddresses(attrs, "email.reply_to.address", d.replyTo)
	}
	attrs.PutStr("email.content_type", valid(w.msg.contentType))
	if d.xMailer != "" {
		attrs.PutStr("email.x_mailer", d.xMailer)
	}
	if w.date != "" {
		attrs.PutStr("email.origination_timestamp", w.date)
	}
	attrs.PutStr("email.delivery_timestamp", w.receivedAt)
	attrs.PutInt("email.attachments.count", int64(len(w.msg.attachments)))
	attrs.PutInt("smtp.message.size", w.size)
	if env.TLSVersion != "" {
		attrs.PutStr("tls.protocol.version", valid(env.TLSVersion))
	}
	if env.TLSCipher != "" {
		attrs.PutStr("tls.cipher", valid(env.TLSCipher))
	}
	if env.AuthUser != "" {
		attrs.PutStr("user.name", valid(env.AuthUser))
	}
	if len(d.parseErrors) > 0 {
		attrs.PutStr("email.parse_error", strings.Join(d.parseErrors, "; "))
	}
	if d.truncated {
		attrs.PutBool("email.body.truncated", true)
	}
}

func (w *recordWriter) putClient(m pcommon.Map) {
	env := w.env
	m.EnsureCapacity(6)
	if w.client.ok {
		m.PutStr("address", w.client.host)
		m.PutInt("port", w.client.port)
	}
	putNonEmpty(m, "helo", env.Helo)
	putNonEmpty(m, "tls_version", env.TLSVersion)
	putNonEmpty(m, "tls_cipher", env.TLSCipher)
	putNonEmpty(m, "auth_user", env.AuthUser)
}

// clientAddr is the client's address as the record shows it.
type clientAddr struct {
	ok       bool
	hostPort string // "192.0.2.1:25", "[2001:db8::1]:25"; "" when unknown
	host     string // the address alone, without brackets
	port     int64
}

func clientAddrOf(ap netip.AddrPort) clientAddr {
	if !ap.IsValid() {
		return clientAddr{}
	}
	// A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	hostPort := ap.String()
	host := strings.Trim(hostPort[:strings.LastIndexByte(hostPort, ':')], "[]")
	return clientAddr{ok: true, hostPort: hostPort, host: host, port: int64(ap.Port())}
}

// putHeaders groups top-level fields under their canonical name
// (X-SPAM-FLAG and x-spam-flag become X-Spam-Flag), so that a processor
// looks a header up under one spelling; values are kept in order of
// appearance.
func putHeaders(m pcommon.Map, h header) {
	m.EnsureCapacity(len(h))
	// The map's own lookup is a linear scan: fine for ordinary headers,
	// quadratic for a hostile one with thousands of fields.
	var slots map[string]pcommon.Slice
	if len(h) > 32 {
		slots = make(map[string]pcommon.Slice, len(h))
	}
	for _, f := range h {
		var s pcommon.Slice
		if slots != nil {
			var ok bool
			if s, ok = slots[f.name]; !ok {
				s = m.PutEmptySlice(f.name)
				slots[f.name] = s
			}
		} else if v, ok := m.Get(f.name); ok {
			s = v.Slice()
		} else {
			s = m.PutEmptySlice(f.name)
		}
		s.AppendEmpty().SetStr(f.value)
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
	s.EnsureCapacity(len(list))
	for _, a := range list {
		am := s.AppendEmpty().SetEmptyMap()
		am.EnsureCapacity(2)
		am.PutStr("name", a.name)
		am.PutStr("address", a.address)
	}
}

// putAddresses writes the bare addresses of list.
func putAddresses(m pcommon.Map, key string, list []addr) {
	s := m.PutEmptySlice(key)
	s.EnsureCapacity(len(list))
	for _, a := range list {
		s.AppendEmpty().SetStr(a.address)
	}
}

func putAttachments(s pcommon.Slice, list []attachment) {
	s.EnsureCapacity(len(list))
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
