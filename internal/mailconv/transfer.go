package mailconv

import (
	"bufio"
	"encoding/base64"
	"io"
	"strings"
	"sync"
)

// transferDecoder returns a reader decoding the Content-Transfer-Encoding.
// The decoders are lenient: invalid input is skipped or passed through and
// reported through bad(), never returned as an error, so the rest of a part
// is still decoded. Decoders hold pooled buffers: the caller hands the
// reader to releaseDecoder once it is done with it.
func transferDecoder(cte string, r io.Reader, bad func(string)) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return r
	case "quoted-printable":
		br := qpBufPool.Get().(*bufio.Reader)
		br.Reset(r)
		return &qpReader{br: br, bad: bad}
	case "base64":
		b := base64Pool.Get().(*base64Reader)
		b.r, b.bad = r, bad
		return b
	default:
		bad("unknown Content-Transfer-Encoding " + quoteSnippet(cte) + ", kept raw")
		return r
	}
}

// Buffers of the decoders, kept across parts and messages: two base64
// attachments cost 28 KB of fresh buffers otherwise.
var (
	qpBufPool  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	base64Pool = sync.Pool{New: func() any { return new(base64Reader) }}
)

// releaseDecoder returns the pooled buffers of a reader from
// transferDecoder; dec must not be used afterwards.
func releaseDecoder(dec io.Reader) {
	switch d := dec.(type) {
	case *qpReader:
		d.br.Reset(nil)
		qpBufPool.Put(d.br)
		d.br = nil
	case *base64Reader:
		// Field by field: zeroing the 8 KiB input array is not needed.
		d.r, d.bad, d.nc, d.out, d.err, d.reported = nil, nil, 0, nil, nil, false
		base64Pool.Put(d)
	}
}

func quoteSnippet(s string) string {
	return "\"" + snippet([]byte(s)) + "\""
}

// qpReader decodes quoted-printable. Unlike mime/quotedprintable it never
// stops at bad input: an "=" not followed by two hex digits or a line break
// is kept literally and reported once.
type qpReader struct {
	br       *bufio.Reader
	bad      func(string)
	reported bool
}

func (q *qpReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := q.br.ReadByte()
		if err != nil {
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		if c != '=' {
			p[n] = c
			n++
			continue
		}
		if q.softBreak() {
			continue
		}
		if peek, _ := q.br.Peek(2); len(peek) == 2 && isHex(peek[0]) && isHex(peek[1]) {
			p[n] = unhex(peek[0])<<4 | unhex(peek[1])
			n++
			_, _ = q.br.Discard(2)
			continue
		}
		if !q.reported {
			q.reported = true
			q.bad("invalid quoted-printable sequence, kept literally")
		}
		p[n] = '='
		n++
	}
	return n, nil
}

// softBreak consumes "=" [WSP] (CRLF | LF | EOF) and reports whether it was one.
func (q *qpReader) softBreak() bool {
	for i := 1; ; i++ {
		peek, err := q.br.Peek(i)
		if len(peek) < i {
			if err != nil && i > 1 || err == io.EOF {
				// "=" plus optional whitespace at the very end.
				_, _ = q.br.Discard(len(peek))
				return true
			}
			return false
		}
		switch peek[i-1] {
		case ' ', '\t':
			if i > 76 { // not a soft break, just a lot of spaces
				return false
			}
			continue
		case '\n':
			_, _ = q.br.Discard(i)
			return true
		case '\r':
			if next, _ := q.br.Peek(i + 1); len(next) == i+1 && next[i] == '\n' {
				_, _ = q.br.Discard(i + 1)
				return true
			}
			return false
		default:
			return false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// base64Reader decodes base64 while skipping whitespace and, after reporting
// them, any other characters outside the alphabet. Padding in the middle
// (concatenated encodings) restarts decoding instead of failing.
type base64Reader struct {
	r        io.Reader
	bad      func(string)
	in       [8192]byte
	carry    [4]byte // undecoded tail of the previous chunk (< 4 chars)
	nc       int
	out      []byte // decoded, not yet returned
	outBuf   []byte
	err      error
	reported bool
}

func (b *base64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		b.fill()
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// fill reads one chunk, filters it in place down to alphabet characters and
// decodes all complete 4-character groups in one call.
func (b *base64Reader) fill() {
	if b.outBuf == nil {
		b.outBuf = make([]byte, 0, len(b.in)/4*3+3)
	}
	start := copy(b.in[:], b.carry[:b.nc])
	n, err := b.r.Read(b.in[start:])
	w := start // write index; never passes the read index
	out := b.outBuf[:0]
	for _, c := range b.in[start : start+n] {
		switch {
		case base64Value(c):
			b.in[w] = c
			w++
		case c == '=':
			out = b.decode(out, b.in[:w])
			w = 0
		case c == '\r' || c == '\n' || c == ' ' || c == '\t':
		default:
			b.report("invalid base64 characters skipped")
		}
	}
	full := w / 4 * 4
	out = b.decode(out, b.in[:full])
	b.nc = copy(b.carry[:], b.in[full:w])
	if err != nil {
		out = b.decode(out, b.carry[:b.nc])
		b.nc = 0
		b.err = err
	}
	b.out = out
}

// decode appends the decoding of s, which holds only alphabet characters and
// may end in a short (unpadded) group.
func (b *base64Reader) decode(out, s []byte) []byte {
	if len(s)%4 == 1 {
		b.report("truncated base64 data")
		s = s[:len(s)-1]
	}
	if len(s) == 0 {
		return out
	}
	dst := out[len(out):cap(out)]
	if len(dst) < base64.RawStdEncoding.DecodedLen(len(s)) {
		dst = make([]byte, base64.RawStdEncoding.DecodedLen(len(s)))
		n, _ := base64.RawStdEncoding.Decode(dst, s)
		return append(out, dst[:n]...)
	}
	n, _ := base64.RawStdEncoding.Decode(dst, s)
	return out[:len(out)+n]
}

func (b *base64Reader) report(msg string) {
	if !b.reported {
		b.reported = true
		b.bad(msg)
	}
}

func base64Value(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
