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
	"golang.org/x/text/encoding/charmap"
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
// line that ends it. It is deliberately more forgiving than a strict MIME
// parser: lines without a colon are skipped (and reported) instead of ending
// the header, bare LF works like CRLF, and fields beyond maxBytes are consumed
// but dropped so a hostile header cannot grow memory without bound.
func readHeader(br *bufio.Reader, maxBytes int, errs *errorList, where string) header {
	var (
		h        header
		cur      []byte // the field being unfolded
		total    int
		overflow bool
		sawNUL   bool
	)
	flush := func() {
		if cur == nil {
			return
		}
		if bytes.IndexByte(cur, 0) >= 0 {
			sawNUL = true
			cur = bytes.ReplaceAll(cur, []byte{0}, nil)
		}
		if f, ok := parseField(cur); ok {
			h = append(h, f)
		} else {
			errs.addf("%s: header line without colon: %q", where, snippet(cur))
		}
		cur = nil
	}
	for {
		line, n, err := readLine(br, maxBytes+1)
		total += n
		if n == 0 && err != nil {
			break // EOF (message without body) or read error
		}
		if len(line) == 0 {
			break // the blank line separating header and body
		}
		if total > maxBytes {
			if !overflow {
				overflow = true
				flush() // the field before the overflowing line is complete
				errs.addf("%s: header exceeds %d bytes; remaining fields ignored", where, maxBytes)
			}
			cur = nil
			if err != nil {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				errs.addf("%s: continuation line without a field: %q", where, snippet(line))
			} else {
				// Unfold to a single space like most MUAs display it.
				cur = append(cur, ' ')
				cur = append(cur, bytes.TrimLeft(line, " \t")...)
			}
		} else {
			flush()
			cur = append([]byte(nil), line...)
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

// parseField splits "Name: value". The name must be printable ASCII without
// spaces (trailing spaces before the colon are tolerated, they occur).
func parseField(line []byte) (field, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return field{}, false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return field{}, false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return field{}, false
		}
	}
	return field{name: string(name), value: string(bytes.Trim(line[i+1:], " \t"))}, true
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

// latin1 decodes ISO-8859-1 bytes; it cannot fail since every byte maps.
func latin1(s string) string {
	out, err := charmap.ISO8859_1.NewDecoder().String(s)
	if err != nil {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return out
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
