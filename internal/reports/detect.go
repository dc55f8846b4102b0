package reports

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Bounds of the MIME walk besides Limits.
const (
	maxDepth         = 10        // multipart nesting looked into
	maxFieldBytes    = 1 << 20   // a message/feedback-report or delivery-status part
	maxReturnedBytes = 256 << 10 // header block of a returned message
)

// walkMessage reads the top-level entity; a message whose header cannot be
// read at all is no report.
func (x *extraction) walkMessage(msg []byte) {
	e, err := message.ReadWithOptions(bytes.NewReader(msg), &message.ReadOptions{MaxHeaderBytes: maxReturnedBytes})
	if e == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return
	}
	x.walkEntity(e, 0)
}

// walkEntity dispatches on the media type: report parts are read, returned
// messages are looked at for their header only, and any other leaf that may
// carry an aggregate report is sniffed.
func (x *extraction) walkEntity(e *message.Entity, depth int) {
	if x.timeUp() {
		return
	}
	x.parts++
	if x.parts > x.limits.MaxParts {
		if x.parts == x.limits.MaxParts+1 {
			x.limitHit(LimitParts, "more than %d MIME parts; the rest was not looked at", x.limits.MaxParts)
		}
		return
	}
	mt, params, _ := e.Header.ContentType()
	mt = strings.ToLower(mt)
	if strings.HasPrefix(mt, "multipart/") {
		x.walkMultipart(e, depth)
		return
	}
	switch mt {
	case "message/feedback-report":
		if !x.opts.wants(KindFeedback) {
			return
		}
		data, _ := io.ReadAll(io.LimitReader(e.Body, maxFieldBytes))
		blocks := readFieldBlocks(data)
		if len(blocks) > 0 {
			x.feedback = append(x.feedback, blocks[0])
		}
	case "message/delivery-status", "message/global-delivery-status":
		if !x.opts.wants(KindDSN) {
			return
		}
		data, _ := io.ReadAll(io.LimitReader(e.Body, maxFieldBytes))
		x.dsn = append(x.dsn, parseDSN(data))
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers":
		x.returned = append(x.returned, readReturned(e.Body))
	default:
		_, dispParams, _ := e.Header.ContentDisposition()
		name := dispParams["filename"]
		if name == "" {
			name = params["name"]
		}
		if mayCarryReport(mt, name) {
			x.readPayload(e.Body, name)
		}
	}
}

func (x *extraction) walkMultipart(e *message.Entity, depth int) {
	if depth >= maxDepth {
		x.errorf("MIME nesting deeper than %d; inner parts not looked at", maxDepth)
		return
	}
	mr := e.MultipartReader()
	if mr == nil {
		return
	}
	for {
		p, err := mr.NextPart()
		if p == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
			return
		}
		x.walkEntity(p, depth+1)
		if x.parts > x.limits.MaxParts || x.ctx.Err() != nil {
			return
		}
	}
}

// mayCarryReport: the declared type or name make a part a candidate; what
// it contains is then decided by its first bytes.
func mayCarryReport(mediaType, name string) bool {
	switch mediaType {
	case "application/zip", "application/x-zip-compressed", "application/x-zip",
		"application/gzip", "application/x-gzip", "application/x-gunzip",
		"application/octet-stream", "application/xml", "text/xml",
		"application/json", "application/tlsrpt+gzip", "application/tlsrpt+json":
		return true
	}
	n := strings.ToLower(name)
	for _, ext := range []string{".zip", ".gz", ".gzip", ".xml", ".json"} {
		if strings.HasSuffix(n, ext) {
			return true
		}
	}
	return false
}

// readPayload reads one candidate within the compressed-bytes limit and
// hands it to the decoder its first bytes call for.
func (x *extraction) readPayload(body io.Reader, name string) {
	br := bufio.NewReader(body)
	head, _ := br.Peek(sniffWindow)
	if sniff(head) == formatUnknown {
		return
	}
	payload, err := readAtMost(br, x.limits.MaxCompressedBytes, LimitCompressedBytes, "attachment "+quoteName(name))
	if err != nil {
		x.readFailed(err, name)
		return
	}
	ex := &expander{ctx: x.ctx, limits: x.limits}
	r, format, err := ex.open(payload)
	if err != nil {
		x.readFailed(err, name)
		return
	}
	if format == formatUnknown {
		return // e.g. a zip without a .xml or .json entry
	}
	r = &ctxReader{ctx: x.ctx, r: r} // uncompressed payloads have no bounded layer
	switch format {
	case formatXML:
		x.decodeDMARC(r, name)
	case formatJSON:
		x.decodeTLSRPT(r, name)
	}
}

// readFailed reports err as a limit hit or as an unreadable attachment.
func (x *extraction) readFailed(err error, name string) {
	if le, ok := asLimit(err); ok {
		if le.limit == LimitTime {
			x.timeUp()
			return
		}
		x.limitHit(le.limit, "%s: %s", quoteName(name), le.msg)
		return
	}
	x.errorf("%s: %v", quoteName(name), err)
}

func quoteName(name string) string {
	if name == "" {
		return "report"
	}
	return "report " + strings.ToValidUTF8(name, "\uFFFD")
}

// headerField is one "Name: value" field, the name as written.
type headerField struct{ name, value string }

// readReturned reads the header of a returned or reported message, in
// wire order (the order Fields iterates in).
func readReturned(body io.Reader) fieldBlock {
	br := bufio.NewReader(io.LimitReader(body, maxReturnedBytes))
	h, _ := textproto.ReadHeader(br)
	var b fieldBlock
	fields := h.Fields()
	for fields.Next() {
		b = append(b, headerField{fields.Key(), valid(fields.Value())})
	}
	return b
}

// fieldBlock is one block of "Name: value" fields of a report part, in
// order, names kept as written.
type fieldBlock []headerField

func (b fieldBlock) get(name string) string {
	for _, f := range b {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

func (b fieldBlock) all(name string) []string {
	var out []string
	for _, f := range b {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// readFieldBlocks splits a report part into its blank-line separated
// blocks of fields (RFC 3464 section 2.1, RFC 5965 section 3.1), unfolding
// continuation lines. Lines that are not fields are skipped.
func readFieldBlocks(data []byte) []fieldBlock {
	var blocks []fieldBlock
	var cur fieldBlock
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = nil
		}
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if len(cur) > 0 {
				cur[len(cur)-1].value += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || strings.ContainsAny(name, " \t") {
				continue
			}
			cur = append(cur, headerField{valid(name), valid(strings.TrimSpace(value))})
		}
	}
	flush()
	return blocks
}

// valid replaces invalid UTF-8, which pdata must not carry.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
