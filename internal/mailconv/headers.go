package mailconv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"
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
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

func (h header) has(name string) bool {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
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
	var (
		h        header
		cur      []byte // value of the field being unfolded
		name     string // its name; "" when no field is open
		total    int
		overflow bool
		sawNUL   bool
	)
	flush := func() {
		if name == "" {
			return
		}
		if bytes.IndexByte(cur, 0) >= 0 {
			sawNUL = true
			cur = bytes.ReplaceAll(cur, []byte{0}, nil)
		}
		h = append(h, field{name: name, value: string(bytes.Trim(cur, " \t"))})
		name, cur = "", cur[:0]
	}
	for first := true; ; first = false {
		kind, nameLen := peekLineKind(br)
		if kind == lineText {
			noteHeaderEnd(br, errs, where, first)
			break
		}
		line, n, err := readLine(br, maxBytes+1)
		total += n
		if kind == lineBlank || n == 0 {
			break // the blank line separating header and body, or EOF
		}
		if total > maxBytes {
			if !overflow {
				overflow = true
				flush() // the field before the overflowing line is complete
				errs.addf("%s: header exceeds %d bytes; remaining fields ignored", where, maxBytes)
			}
			name = ""
			if err != nil {
				break
			}
			continue
		}
		switch kind {
		case lineField:
			flush()
			name = string(bytes.TrimRight(line[:nameLen], " \t"))
			cur = append(cur[:0], line[nameLen+1:]...)
		case lineContinuation:
			if name == "" {
				errs.addf("%s: continuation line without a field: %q", where, snippet(line))
			} else {
				// Unfold to a single space like most MUAs display it.
				cur = append(cur, ' ')
				cur = append(cur, bytes.TrimLeft(line, " \t")...)
			}
		case lineNoName:
			flush()
			errs.addf("%s: header line without a field name: %q", where, snippet(line))
		case lineMbox:
			flush()
			errs.addf("%s: mbox \"From \" line ignored: %q", where, snippet(line))
		}
		if err != nil {
			break
		}
	}
	flush()
	if sawNUL {
		errs.addf("%s: NUL bytes removed from header", where)
	}
	return h
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
// bytes consumed including the line ending.
func readLine(br *bufio.Reader, keep int) (line []byte, n int, err error) {
	for {
		chunk, e := br.ReadSlice('\n')
		n += len(chunk)
		if room := keep - len(line); room > 0 {
			if len(chunk) > room {
				line = append(line, chunk[:room]...)
			} else {
				line = append(line, chunk...)
			}
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		err = e
		break
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
