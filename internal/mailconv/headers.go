package mailconv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// field is one header field as it appeared: name spelled as written, value
// unfolded and trimmed but not yet RFC 2047 decoded.
type field struct {
	name  string
	value string
}

// header is an ordered list of fields. Lookups are case-insensitive.
type header []field

func (h header) get(name string) string {
	if i := h.index(name); i >= 0 {
		return h[i].value
	}
	return ""
}

// index returns the position of the first field called name, or -1.
func (h header) index(name string) int {
	for i, f := range h {
		if strings.EqualFold(f.name, name) {
			return i
		}
	}
	return -1
}

// size approximates the on-the-wire size of the header block.
func (h header) size() int {
	n := 0
	for _, f := range h {
		n += len(f.name) + len(f.value) + 4 // ": " and CRLF
	}
	return n
}

// readHeader reads a header block from br up to and including the blank
// line that ends it, the way Python's email parser reads one: a line that is
// not a header field ends the header without being consumed, so it and the
// rest belong to the body (a header-less alert mail keeps its text). Bare LF
// works like CRLF, and fields beyond maxBytes are consumed but dropped so a
// hostile header cannot grow memory without bound.
func readHeader(br *bufio.Reader, maxBytes int, errs *errorList, where string) header {
	hb := headerBuilderPool.Get().(*headerBuilder)
	defer hb.release()
	total, overflow := 0, false
	for first := true; ; first = false {
		kind, nameLen := peekLineKind(br)
		if kind == lineText {
			noteHeaderEnd(br, errs, where, first)
			break
		}
		line, n, err := readLine(br, maxBytes+1, &hb.scratch)
		total += n
		if kind == lineBlank || n == 0 {
			break // the blank line separating header and body, or EOF
		}
		if total > maxBytes {
			if !overflow {
				overflow = true
				hb.finish() // the field before the overflowing line is complete
				errs.addf("%s: header exceeds %d bytes; remaining fields ignored", where, maxBytes)
			}
			hb.open = false
			if err != nil {
				break
			}
			continue
		}
		switch kind {
		case lineField:
			hb.start(bytes.TrimRight(line[:nameLen], " \t"), line[nameLen+1:])
		case lineContinuation:
			if !hb.open {
				errs.addf("%s: continuation line without a field: %q", where, snippet(line))
			} else {
				hb.fold(line)
			}
		case lineNoName:
			hb.finish()
			errs.addf("%s: header line without a field name: %q", where, snippet(line))
		case lineMbox:
			hb.finish()
			errs.addf("%s: mbox \"From \" line ignored: %q", where, snippet(line))
		}
		if err != nil {
			break
		}
	}
	hb.finish()
	if hb.sawNUL {
		errs.addf("%s: NUL bytes removed from header", where)
	}
	return hb.header()
}

// headerBuilder collects the fields of one header block back to back in one
// byte arena, so that a block costs two allocations rather than two per
// field. Builders are pooled.
type headerBuilder struct {
	arena   []byte
	spans   []fieldSpan
	scratch []byte // holds lines longer than the read buffer
	open    bool   // a field is being unfolded: the arena ends with its value
	name    int    // arena offset of the open field's name
	value   int    // arena offset of its value
	sawNUL  bool
}

// fieldSpan locates one finished field in the arena.
type fieldSpan struct{ name, nameEnd, value, valueEnd int }

var headerBuilderPool = sync.Pool{New: func() any { return new(headerBuilder) }}

// release returns hb to the pool; buffers a hostile header grew are left to
// the garbage collector instead of being kept.
func (hb *headerBuilder) release() {
	const keep = 64 << 10
	if cap(hb.arena) > keep {
		hb.arena = nil
	}
	if cap(hb.spans) > keep/16 {
		hb.spans = nil
	}
	if cap(hb.scratch) > keep {
		hb.scratch = nil
	}
	*hb = headerBuilder{arena: hb.arena[:0], spans: hb.spans[:0], scratch: hb.scratch[:0]}
	headerBuilderPool.Put(hb)
}

// start opens a field; the one before it is complete.
func (hb *headerBuilder) start(name, value []byte) {
	hb.finish()
	hb.open = true
	hb.name = len(hb.arena)
	hb.arena = append(hb.arena, name...)
	hb.value = len(hb.arena)
	hb.arena = append(hb.arena, value...)
}

// fold appends a continuation line, unfolded to a single space the way most
// MUAs display it.
func (hb *headerBuilder) fold(line []byte) {
	hb.arena = append(hb.arena, ' ')
	hb.arena = append(hb.arena, bytes.TrimLeft(line, " \t")...)
}

// finish closes the open field: NUL bytes are removed and the value trimmed.
func (hb *headerBuilder) finish() {
	if !hb.open {
		return
	}
	hb.open = false
	v := hb.arena[hb.value:]
	if bytes.IndexByte(v, 0) >= 0 {
		hb.sawNUL = true
		v = removeNUL(v)
		hb.arena = hb.arena[:hb.value+len(v)]
	}
	start := hb.value + len(v) - len(bytes.TrimLeft(v, " \t"))
	end := max(start, hb.value+len(bytes.TrimRight(v, " \t")))
	hb.spans = append(hb.spans, fieldSpan{hb.name, hb.value, start, end})
}

// header returns the fields as strings sharing one allocation.
func (hb *headerBuilder) header() header {
	if len(hb.spans) == 0 {
		return nil
	}
	s := string(hb.arena)
	h := make(header, len(hb.spans))
	for i, sp := range hb.spans {
		h[i] = field{name: s[sp.name:sp.nameEnd], value: s[sp.value:sp.valueEnd]}
	}
	return h
}

// removeNUL drops NUL bytes from b in place.
func removeNUL(b []byte) []byte {
	out := b[:0]
	for _, c := range b {
		if c != 0 {
			out = append(out, c)
		}
	}
	return out
}

// noteHeaderEnd reports a header block that ended at a line of text rather
// than at a blank line.
func noteHeaderEnd(br *bufio.Reader, errs *errorList, where string, first bool) {
	line, _ := br.Peek(min(br.Buffered(), 64))
	line, _, _ = bytes.Cut(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if first {
		errs.addf("%s: first line is not a header field, the whole message is body: %q", where, snippet(line))
		return
	}
	errs.addf("%s: line is not a header field, it and the rest are body: %q", where, snippet(line))
}

// lineKind is what the next line of a header block is.
type lineKind int

const (
	lineBlank        lineKind = iota // empty line or end of input: the header ends
	lineField                        // "Name: value"
	lineContinuation                 // starts with space or tab: folds into the field before
	lineNoName                       // ": value": skipped (Python: "Missing header name")
	lineMbox                         // "From sender date", an mbox separator: skipped
	lineText                         // anything else: the header ends before it
)

// peekLineKind classifies the next line without consuming it; for a field,
// nameLen is the offset of its colon. Header field names are printable
// ASCII without colon (RFC 5322 section 2.2), the set Python's email parser
// accepts too; white space before the colon is RFC 5322's obsolete syntax
// (section 4.5.3), which a receiver must still accept.
func peekLineKind(br *bufio.Reader) (kind lineKind, nameLen int) {
	// What is buffered usually decides; only then wait for more input.
	for n := br.Buffered(); ; n = min(max(2*n, 128), br.Size()) {
		b, err := br.Peek(n)
		kind, nameLen, decided := classifyLine(b, err != nil)
		if decided {
			return kind, nameLen
		}
		if err != nil || n >= br.Size() {
			// A "name" longer than the read buffer is not a header field.
			return lineText, 0
		}
	}
}

// classifyLine decides what the line starting at b is; decided is false
// when b ends before that is known and more input may follow (complete
// is false).
func classifyLine(b []byte, complete bool) (kind lineKind, nameLen int, decided bool) {
	if len(b) == 0 {
		return lineBlank, 0, complete
	}
	switch b[0] {
	case '\n':
		return lineBlank, 0, true
	case '\r':
		if len(b) == 1 {
			return lineText, 0, complete
		}
		if b[1] == '\n' {
			return lineBlank, 0, true
		}
		return lineText, 0, true
	case ' ', '\t':
		return lineContinuation, 0, true
	case ':':
		return lineNoName, 0, true
	}
	i := 0
	for i < len(b) && b[i] > ' ' && b[i] < 127 && b[i] != ':' {
		i++
	}
	j := i
	for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
		j++
	}
	switch {
	case j == len(b):
		return lineText, 0, complete
	case b[j] == ':':
		return lineField, j, true
	case i == 4 && b[i] == ' ' && string(b[:4]) == "From":
		return lineMbox, 0, true
	}
	return lineText, 0, true
}

// readLine returns the next line without its line ending, keeping at most
// keep bytes of it (the rest is consumed and dropped). n is the number of
// bytes consumed including the line ending. The line is only valid until the
// next read from br: it is br's own buffer, or *scratch for a line longer
// than that buffer.
func readLine(br *bufio.Reader, keep int, scratch *[]byte) (line []byte, n int, err error) {
	chunk, err := br.ReadSlice('\n')
	n = len(chunk)
	if err != bufio.ErrBufferFull {
		line = chunk[:min(len(chunk), keep)]
	} else {
		line = append((*scratch)[:0], chunk[:min(len(chunk), keep)]...)
		for err == bufio.ErrBufferFull {
			chunk, err = br.ReadSlice('\n')
			n += len(chunk)
			if room := keep - len(line); room > 0 {
				line = append(line, chunk[:min(len(chunk), room)]...)
			}
		}
		*scratch = line[:0]
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if err == io.EOF && n > 0 {
		err = nil // the last line simply has no line ending
	}
	return line, n, err
}

// wordDecoder decodes RFC 2047 encoded-words with every charset go-message
// knows (ISO-2022-JP, Shift_JIS, KOI8-R, ...).
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeHeaderValue turns a raw header value into valid UTF-8: raw 8-bit
// bytes that are not UTF-8 are read as ISO-8859-1, then encoded-words are
// decoded. Problems are reported against the field name.
func decodeHeaderValue(name, raw string, errs *errorList) string {
	s := raw
	if !utf8.ValidString(s) {
		s = latin1(s)
		errs.addf("header %s: 8-bit bytes without charset, decoded as ISO-8859-1", name)
	}
	if strings.Contains(s, "=?") {
		dec, err := wordDecoder.DecodeHeader(s)
		if err != nil {
			errs.addf("header %s: %v", name, err)
		} else {
			s = dec
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// latin1 decodes ISO-8859-1 bytes: every byte is the code point of the
// same value, so this cannot fail.
func latin1(s string) string {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, rune(s[i]))
	}
	return string(out)
}

// snippet shortens malformed input quoted in an error message.
func snippet(b []byte) string {
	const max = 40
	if len(b) > max {
		b = b[:max]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// errorList collects parse problems, de-duplicated and bounded so a hostile
// message cannot produce an unbounded attribute.
type errorList struct {
	items   []string
	seen    map[string]bool
	dropped int
}

const maxParseErrors = 20

func (e *errorList) addf(format string, args ...any) {
	msg := strings.ToValidUTF8(fmt.Sprintf(format, args...), "\uFFFD")
	if e.seen[msg] {
		return
	}
	if len(e.items) >= maxParseErrors {
		e.dropped++
		return
	}
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	e.seen[msg] = true
	e.items = append(e.items, msg)
}

func (e *errorList) list() []string {
	if e.dropped == 0 {
		return e.items
	}
	return append(append([]string(nil), e.items...), fmt.Sprintf("%d more problems not shown", e.dropped))
}
