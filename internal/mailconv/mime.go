package mailconv

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
	"sync"

	"github.com/emersion/go-message/textproto"
)

// message is everything parseMessage recovered; decode.go decodes its
// header fields and record.go turns it into pdata.
type message struct {
	header      header
	contentType string // top-level media type
	text        textBody
	html        textBody
	attachments []attachment
	errs        errorList
	decoded     decoded
}

// textBody accumulates decoded text up to the body cap. Parts are decoded
// straight into buf so a large body is not copied several times.
type textBody struct {
	buf       []byte
	present   bool
	truncated bool
}

// entity is a MIME entity's parsed header.
type entity struct {
	header      header
	mediaType   string
	params      map[string]string
	disposition string
	dispParams  map[string]string
}

// walker walks the MIME tree, consuming the stream as it goes.
type walker struct {
	opts   Options
	cr     *countingReader
	msg    *message
	parts  int
	halted bool // MaxParts hit: stop looking at further parts

	reportedDepth bool
}

const rawRecoveryBytes = 64 << 10

func parseMessage(cr *countingReader, opts Options) (msg *message) {
	msg = &message{}
	defer func() {
		// Belt and braces: a bug must not take the receiver down. The fuzz
		// test fails on this message, so it is not a silent escape hatch.
		if p := recover(); p != nil {
			msg.errs.addf("internal error: %v", p)
		}
	}()
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(cr)
	defer func() {
		br.Reset(nil) // drop the reference to the message stream
		readerPool.Put(br)
	}()
	msg.header = readHeader(br, opts.MaxHeaderBytes, &msg.errs, "header")
	w := &walker{opts: opts, cr: cr, msg: msg}
	e := w.describe(msg.header)
	msg.contentType = e.mediaType
	w.walk(e, br, 0, "")
	return msg
}

// readerPool keeps the 32 KiB read buffers of parseMessage across messages:
// allocating one per message dominated the cost of converting small mail.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

// copyBufPool holds the buffers of copyPooled.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyPooled is io.Copy with a pooled buffer; io.Copy allocates 32 KiB per
// call when neither side has a ReadFrom/WriteTo shortcut.
func copyPooled(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	return io.CopyBuffer(dst, src, *buf)
}

// describe parses Content-Type and Content-Disposition. A missing or broken
// Content-Type means text/plain (RFC 2045 section 5.2).
func (w *walker) describe(h header) *entity {
	// Without Content-Type, params stays nil: it is only ever read.
	e := &entity{header: h, mediaType: "text/plain"}
	if ct := h.get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		switch {
		case err == nil:
			e.mediaType, e.params = mt, params
		case errors.Is(err, mime.ErrInvalidMediaParameter):
			e.mediaType = mt
			w.msg.errs.addf("Content-Type %q: invalid parameter", snippet([]byte(ct)))
			e.params = fallbackParams(ct)
		default:
			// Keep what is recognizable (e.g. a boundary next to a
			// duplicated parameter) rather than falling back to text.
			w.msg.errs.addf("Content-Type %q: %v", snippet([]byte(ct)), err)
			if mt := looseMediaType(ct); mt != "" {
				e.mediaType, e.params = mt, fallbackParams(ct)
			}
		}
	}
	if cd := h.get("Content-Disposition"); cd != "" {
		d, params, err := mime.ParseMediaType(cd)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			// Still honour an obvious "attachment" so the part is not shown as body.
			d, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(cd)), ";")
			w.msg.errs.addf("Content-Disposition %q: %v", snippet([]byte(cd)), err)
		}
		if params == nil {
			params = fallbackParams(cd)
		}
		e.disposition, e.dispParams = d, params
	}
	return e
}

// walk dispatches one entity whose body is r (still transfer-encoded).
func (w *walker) walk(e *entity, r io.Reader, depth int, parent string) {
	switch {
	case strings.HasPrefix(e.mediaType, "multipart/"):
		w.multipart(e, r, depth)
	case e.isAttachment():
		w.attachment(e, r)
	case e.mediaType == "text/html":
		w.text(e, r, &w.msg.html, parent)
	default:
		w.text(e, r, &w.msg.text, parent)
	}
}

// isAttachment: any part that is not inline text/plain or text/html, or that
// is explicitly an attachment or carries a file name.
func (e *entity) isAttachment() bool {
	if e.disposition == "attachment" || e.filenameParam() != "" {
		return true
	}
	return e.mediaType != "text/plain" && e.mediaType != "text/html"
}

func (e *entity) filenameParam() string {
	if f := e.dispParams["filename"]; f != "" {
		return f
	}
	return e.params["name"]
}

func (w *walker) multipart(e *entity, r io.Reader, depth int) {
	boundary := e.params["boundary"]
	if boundary == "" {
		w.msg.errs.addf("%s without boundary, treated as text", e.mediaType)
		w.text(&entity{header: e.header, mediaType: "text/plain", params: e.params}, r, &w.msg.text, "")
		return
	}
	// Keep the start of the raw body in case no part can be found at all,
	// so the text is not lost to a wrong boundary.
	rec := &prefixRecorder{r: r, max: rawRecoveryBytes}
	mr := textproto.NewMultipartReader(rec, boundary)
	found := 0
	for !w.halted {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if w.cr.err == nil {
				if found == 0 {
					w.msg.errs.addf("%s: no part found for boundary %q", e.mediaType, snippet([]byte(boundary)))
				} else {
					w.noteErr(err)
				}
			}
			break
		}
		if found == 0 {
			rec.stop()
		}
		found++
		w.parts++
		if w.parts > w.opts.MaxParts {
			w.halted = true
			w.msg.errs.addf("more than %d MIME parts; remaining parts ignored", w.opts.MaxParts)
			break
		}
		if depth+1 > w.opts.MaxDepth {
			if !w.reportedDepth {
				w.reportedDepth = true
				w.msg.errs.addf("MIME nesting deeper than %d; inner parts ignored", w.opts.MaxDepth)
			}
			continue // NextPart skips the unread body
		}
		ph := partHeader(p.Header)
		if ph.size() > w.opts.MaxHeaderBytes {
			w.msg.errs.addf("part header exceeds %d bytes", w.opts.MaxHeaderBytes)
		}
		w.walk(w.describe(ph), p, depth+1, e.mediaType)
		if w.cr.err != nil {
			return
		}
	}
	if found == 0 && len(bytes.TrimSpace(rec.buf)) > 0 && !w.msg.text.present {
		w.msg.errs.addf("%s could not be parsed; raw body kept as text", e.mediaType)
		raw := strings.ReplaceAll(toUTF8(rec.buf, "", false, "text/plain", func(string) {}), "\r\n", "\n")
		w.appendText(&w.msg.text, raw)
	}
}

// partHeader converts go-message's part header to ours (names are in
// canonical form there, which is fine: part headers are not exported).
func partHeader(th textproto.Header) header {
	var h header
	fields := th.Fields()
	for fields.Next() {
		h = append(h, field{name: fields.Key(), value: fields.Value()})
	}
	return h
}

// noteErr records a non-EOF error seen while reading a part. Transport
// errors are not parse errors: Convert returns them instead.
func (w *walker) noteErr(err error) {
	if err == nil || err == io.EOF || w.cr.err != nil {
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "EOF") {
		w.msg.errs.addf("multipart: missing final boundary")
		return
	}
	w.msg.errs.addf("%v", err)
}

// text decodes an inline text part into dst. The first text/plain (or
// text/html) part wins inside multipart/alternative; elsewhere further inline
// parts of the same type are appended (e.g. text, image, text from Apple Mail).
func (w *walker) text(e *entity, r io.Reader, dst *textBody, parent string) {
	if dst.present && parent == "multipart/alternative" {
		return // the unread rest is skipped by the multipart reader
	}
	w.readText(e, r, dst)
}

// separate starts a new segment in dst and returns where it begins.
func separate(dst *textBody) int {
	if dst.present && len(dst.buf) > 0 && dst.buf[len(dst.buf)-1] != '\n' {
		dst.buf = append(dst.buf, '\n')
	}
	dst.present = true
	return len(dst.buf)
}

// endSegment drops a separator that turned out to precede nothing.
func endSegment(dst *textBody, start int) {
	if start > 0 && len(dst.buf) == start && dst.buf[start-1] == '\n' {
		dst.buf = dst.buf[:start-1]
	}
}

func (w *walker) appendText(dst *textBody, s string) {
	start := separate(dst)
	dst.buf = append(dst.buf, s...)
	if b, cut := capUTF8(dst.buf, w.opts.MaxBodyBytes); cut {
		dst.buf, dst.truncated = b, true
	}
	endSegment(dst, start)
}

// prefixRecorder remembers the first max bytes read through it until stop.
type prefixRecorder struct {
	r       io.Reader
	buf     []byte
	max     int
	stopped bool
}

func (p *prefixRecorder) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if !p.stopped && len(p.buf) < p.max {
		room := min(p.max-len(p.buf), n)
		p.buf = append(p.buf, b[:room]...)
	}
	return n, err
}

func (p *prefixRecorder) stop() {
	p.stopped = true
	p.buf = nil
}

// looseMediaType returns the lower-cased "type/subtype" before the first
// ";" when it looks like one.
func looseMediaType(v string) string {
	mt, _, _ := strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" || strings.ContainsAny(mt, " \t\"") {
		return ""
	}
	return mt
}

// fallbackParams extracts name=value pairs from a header that
// mime.ParseMediaType rejected, so a boundary or file name survives sloppy
// quoting.
func fallbackParams(v string) map[string]string {
	params := map[string]string{}
	parts := strings.Split(v, ";")
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if k == "" || strings.Contains(k, "*") {
			continue
		}
		if _, dup := params[k]; !dup {
			params[k] = val
		}
	}
	return params
}
