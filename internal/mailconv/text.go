package mailconv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	htmlcharset "golang.org/x/net/html/charset"
)

// readText decodes a text part to UTF-8 and appends it to dst, which holds
// at most MaxBodyBytes; the rest of the part is consumed and dropped, and dst
// is marked truncated.
func (w *walker) readText(e *entity, r io.Reader, dst *textBody) {
	bad := func(msg string) { w.msg.errs.addf("%s part: %s", e.mediaType, msg) }
	dec := transferDecoder(e.header.get("Content-Transfer-Encoding"), r, bad)
	defer releaseDecoder(dec)

	cs := strings.ToLower(strings.TrimSpace(e.params["charset"]))
	src, converted := dec, false
	if !isUTF8Label(cs) {
		if cr, err := charset.Reader(cs, dec); err != nil {
			bad(fmt.Sprintf("unknown charset %q, bytes kept", snippet([]byte(cs))))
			cs = "unknown"
		} else {
			src, converted = cr, true
		}
	}

	start := separate(dst)
	room := max(w.opts.MaxBodyBytes-start, 0)
	if br, top := r.(*bufio.Reader); top && cap(dst.buf) == 0 {
		// The top-level body of a small message is already buffered
		// whole: start at the size readAtMost would double up to.
		size := 1 << 10
		for size < min(room, br.Buffered())+1 {
			size *= 2
		}
		dst.buf = make([]byte, 0, size)
	}
	var err error
	dst.buf, err = readAtMost(dst.buf, src, room+1)
	w.noteErr(err)
	if len(dst.buf)-start > room {
		dst.truncated = true
		if err == nil {
			// Count the rest of the part as read without decoding it.
			_, err = io.Copy(io.Discard, r)
			w.noteErr(err)
		}
	}

	seg := dst.buf[start:]
	if !utf8.Valid(seg) {
		fixed := toUTF8(seg, cs, converted, e.mediaType, bad)
		dst.buf = append(dst.buf[:start], fixed...)
		seg = dst.buf[start:]
	}
	if bytes.IndexByte(seg, 0) >= 0 {
		bad("NUL bytes removed")
	}
	// Logs read better with one newline convention; CRLF is only the wire format.
	dst.buf = dst.buf[:start+normalizeText(seg)]
	if b, cut := capUTF8(dst.buf, w.opts.MaxBodyBytes); cut {
		dst.buf, dst.truncated = b, true
	}
	endSegment(dst, start)
}

// readAtMost appends up to limit bytes from r to buf.
func readAtMost(buf []byte, r io.Reader, limit int) ([]byte, error) {
	lr := io.LimitReader(r, int64(limit))
	for {
		if len(buf) == cap(buf) {
			// Double (append grows large slices by only 1.25x, which costs
			// many copies for a multi-MiB body), starting at 1 KiB: most
			// alert mails are short.
			grown := make([]byte, len(buf), max(2*cap(buf), 1<<10))
			copy(grown, buf)
			buf = grown
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// normalizeText rewrites b in place, turning CRLF into LF and dropping NUL
// bytes, and returns the new length.
func normalizeText(b []byte) int {
	w := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0 || c == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			continue
		}
		b[w] = c
		w++
	}
	return w
}

func isUTF8Label(cs string) bool {
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8":
		return true
	}
	return false
}

// toUTF8 makes decoded part bytes valid UTF-8. Text claiming to be ASCII or
// having no charset is very often latin-1 in practice (or, for HTML, declares
// its charset in a <meta> tag), so that is tried before replacing bytes.
func toUTF8(b []byte, cs string, converted bool, mediaType string, bad func(string)) string {
	if utf8.Valid(b) {
		return string(b)
	}
	switch {
	case converted:
		// The decoder already replaced what it could not map.
	case cs == "utf-8" || cs == "utf8":
		bad("invalid UTF-8 replaced")
	case mediaType == "text/html" && cs == "":
		if enc, name, _ := htmlcharset.DetermineEncoding(b, "text/html"); enc != nil && name != "utf-8" {
			if out, err := enc.NewDecoder().Bytes(b); err == nil {
				return strings.ToValidUTF8(string(out), "\uFFFD")
			}
		}
		bad("8-bit text without charset, decoded as ISO-8859-1")
		return latin1(string(b))
	default:
		if cs != "unknown" {
			bad("8-bit text without charset, decoded as ISO-8859-1")
		}
		return latin1(string(b))
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// capUTF8 cuts s to at most n bytes without splitting a character.
func capUTF8[T string | []byte](s T, n int) (T, bool) {
	if len(s) <= n {
		return s, false
	}
	if n <= 0 {
		return s[:0], true
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
