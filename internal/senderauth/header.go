package senderauth

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// headerTap keeps the header block of a streaming message, up to a limit,
// for the fields the checks read (From, DKIM-Signature,
// Authentication-Results).
type headerTap struct {
	buf      []byte
	limit    int
	complete bool // the empty line that ends the header was seen
	overflow bool
}

func (h *headerTap) Write(p []byte) {
	if h.complete || h.overflow {
		return
	}
	start := max(len(h.buf)-3, 0) // the end marker may straddle writes
	h.buf = append(h.buf, p...)
	if i := headerEnd(h.buf[start:]); i >= 0 {
		h.buf = h.buf[:start+i]
		h.complete = true
		return
	}
	if len(h.buf) > h.limit {
		h.buf = h.buf[:h.limit]
		h.overflow = true
	}
}

// headerEnd is the length of the header block including its end (a CRLF
// CRLF, or LF LF from a sloppy client), or -1.
func headerEnd(b []byte) int {
	crlf := bytes.Index(b, []byte("\r\n\r\n"))
	lf := bytes.Index(b, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf+2 <= lf):
		return crlf + 4
	case lf >= 0:
		return lf + 2
	}
	return -1
}

// fields parses what was kept. A header cut at the limit is parsed up to
// its last complete line.
func (h *headerTap) fields() textproto.Header {
	b := h.buf
	if !h.complete {
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		}
		b = append(b[:len(b):len(b)], '\r', '\n')
	}
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	return hdr
}

// unfold joins a folded field value onto one line.
func unfold(v string) string {
	v = strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v)
	return strings.TrimSpace(v)
}
