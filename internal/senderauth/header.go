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
	parsed   *textproto.Header // fields of buf, once it no longer changes
}

// done says the kept header no longer changes: it is complete, or cut at
// the limit.
func (h *headerTap) done() bool { return h.complete || h.overflow }

func (h *headerTap) Write(p []byte) {
	if h.done() {
		return
	}
	// Only the header is copied: p usually holds the whole header and
	// much of the body, and the end is looked for in p itself.
	if end := h.endIn(p); end >= 0 {
		h.buf = append(h.buf, p[:end]...)
		h.complete = true
		return
	}
	if room := h.limit - len(h.buf); len(p) > room {
		h.buf = append(h.buf, p[:max(room, 0)]...)
		h.overflow = true
		return
	}
	h.buf = append(h.buf, p...)
}

// endIn is the length of p up to and including the end of the header (the
// first CRLF CRLF, or LF LF from a sloppy client, counting the bytes
// already kept before p), or -1.
func (h *headerTap) endIn(p []byte) int {
	kept := len(h.buf)
	at := func(i int) byte { // i indexes the kept bytes followed by p
		if i < kept {
			return h.buf[i]
		}
		return p[i-kept]
	}
	for off := 0; ; {
		j := bytes.IndexByte(p[off:], '\n')
		if j < 0 {
			return -1
		}
		nl := kept + off + j
		if (nl >= 1 && at(nl-1) == '\n') || (nl >= 3 && at(nl-1) == '\r' && at(nl-2) == '\n' && at(nl-3) == '\r') {
			return off + j + 1
		}
		off += j + 1
	}
}

// fields parses what was kept. A header cut at the limit is parsed up to
// its last complete line. Once the header is done it is parsed only once.
func (h *headerTap) fields() textproto.Header {
	if h.parsed != nil {
		return *h.parsed
	}
	hdr := h.parse()
	if h.done() {
		h.parsed = &hdr
	}
	return hdr
}

func (h *headerTap) parse() textproto.Header {
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

// lineBreaks removes CR and LF; built once, as building a Replacer costs
// more than most of its uses.
var lineBreaks = strings.NewReplacer("\r\n", "", "\n", "", "\r", "")

// unfold joins a folded field value onto one line.
func unfold(v string) string {
	return strings.TrimSpace(lineBreaks.Replace(v))
}
