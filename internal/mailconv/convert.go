// Package mailconv converts one email (raw RFC 5322 bytes plus its SMTP
// envelope) into one plog.LogRecord.
//
// The conversion is streaming: text bodies are kept up to a cap, attachments
// are only hashed and measured, and the input is always read to EOF so the
// caller learns the exact message size. Malformed content never fails the
// conversion; it is reported in Result.ParseErrors and on the record.
package mailconv

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Envelope is what the SMTP session knows about a message besides its bytes.
type Envelope struct {
	From       string         // MAIL FROM address (may be "" for the null sender <>)
	To         []string       // RCPT TO addresses, in order
	Client     netip.AddrPort // client address and port; the zero value when unknown
	Helo       string         // HELO/EHLO name
	AuthUser   string         // authenticated user, "" if none
	TLSVersion string         // "1.2" / "1.3", "" without TLS
	TLSCipher  string         // e.g. "TLS_AES_128_GCM_SHA256", "" without TLS
	ReceivedAt time.Time      // when the message transfer (DATA or the first BDAT) began
	// Enrich, when set, is called once the whole message has been read
	// (never after a read error), with the record's attributes and body
	// map before the body is encoded: the caller adds what it learned
	// from the same bytes (sender authentication) without mailconv
	// knowing about it.
	Enrich func(attrs, body pcommon.Map)
}

// Options tune the conversion. Zero numeric fields mean "use the default".
type Options struct {
	BodyFormat                string // "map" (default when "") or "json"
	HTMLToText                bool   // when only HTML exists, body gets a plain-text rendering of it
	MaxBodyBytes              int    // cap of decoded body text and html each; longer is truncated + marked
	MaxHeaderBytes            int    // cap of the header block (top-level and per part)
	MaxDepth                  int    // MIME nesting cap
	MaxParts                  int    // MIME part count cap
	IncludeAttachmentContent  bool   // add base64 "content" to attachments
	MaxAttachmentContentBytes int    // per-attachment cap for "content" (larger: content omitted, marked)
}

// Body formats accepted in Options.BodyFormat.
const (
	BodyFormatMap  = "map"
	BodyFormatJSON = "json"
)

// DefaultOptions returns the options used for zero fields.
func DefaultOptions() Options {
	return Options{
		BodyFormat:                BodyFormatMap,
		HTMLToText:                false,
		MaxBodyBytes:              4 << 20,
		MaxHeaderBytes:            1 << 20,
		MaxDepth:                  20,
		MaxParts:                  500,
		IncludeAttachmentContent:  false,
		MaxAttachmentContentBytes: 1 << 20,
	}
}

// withDefaults replaces unset (zero or negative) limits by the defaults so a
// zero Options value is usable and no limit can be accidentally disabled.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.BodyFormat == "" {
		o.BodyFormat = d.BodyFormat
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = d.MaxBodyBytes
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = d.MaxDepth
	}
	if o.MaxParts <= 0 {
		o.MaxParts = d.MaxParts
	}
	if o.MaxAttachmentContentBytes <= 0 {
		o.MaxAttachmentContentBytes = d.MaxAttachmentContentBytes
	}
	return o
}

// Result summarizes the conversion for the caller's metrics.
type Result struct {
	Size        int64    // bytes read from r (the whole message as received)
	ParseErrors []string // what went wrong while parsing; empty when clean
}

// Convert reads r to EOF (always, even after a parse problem or a limit, so
// the byte count is right) and fills lr. It returns a non-nil error only when
// reading r fails; that error wraps r's error. Malformed content is never an
// error: it becomes Result.ParseErrors and the email.parse_error attribute.
func Convert(r io.Reader, env Envelope, opts Options, lr plog.LogRecord) (Result, error) {
	opts = opts.withDefaults()
	cr := &countingReader{r: r}

	msg := parseMessage(cr, opts)

	// Whatever the parser left unread (epilogue, ignored parts, everything
	// after a fatal structure problem) still belongs to the message.
	if cr.err == nil {
		_, _ = io.Copy(io.Discard, cr)
	}

	if cr.err != nil {
		env.Enrich = nil
	}
	// Two steps: decode the header fields into msg, then write the record.
	msg.decode(opts)
	res := Result{Size: cr.n, ParseErrors: msg.decoded.parseErrors}
	writeRecord(lr, env, msg, res.Size, opts)

	if cr.err != nil {
		return res, fmt.Errorf("mailconv: reading message: %w", cr.err)
	}
	return res, nil
}

// countingReader counts the bytes read and remembers the first read error so
// that a transport failure can be told apart from malformed content, which
// the MIME layers report as their own errors.
type countingReader struct {
	r   io.Reader
	n   int64
	err error // first error other than io.EOF
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.eof {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	if n < 0 || n > len(p) { // a misbehaving reader must not corrupt our state
		n = 0
	}
	c.n += int64(n)
	switch {
	case err == io.EOF:
		c.eof = true
	case err != nil:
		c.err = err
	}
	return n, err
}
