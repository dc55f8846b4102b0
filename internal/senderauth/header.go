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
	parsed   *headerFields // fields of buf, once it no longer changes
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

// headerFields are the values of the fields the checks read, in header
// order, as textproto.Header.Values gives them.
type headerFields struct {
	from, dkimSignature, authenticationResults []string
}

// fields reads what was kept. A header cut at the limit is read up to its
// last complete line. Once the header is done it is read only once.
func (h *headerTap) fields() headerFields {
	if h.parsed != nil {
		return *h.parsed
	}
	hdr := readFields(h.kept())
	if h.done() {
		h.parsed = &hdr
	}
	return hdr
}

// kept is the header as a parser should see it: cut at its last complete
// line and ended with an empty line when it did not end by itself.
func (h *headerTap) kept() []byte {
	b := h.buf
	if !h.complete {
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		}
		b = append(b[:len(b):len(b)], '\r', '\n')
	}
	return b
}

// readFields takes the three fields out of a header: by scanFields when
// the header is plain, else by go-message's parser (FuzzScanFields checks
// that both read every plain header the same).
func readFields(b []byte) headerFields {
	if hdr, ok := scanFields(b); ok {
		return hdr
	}
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	return headerFields{
		from:                  hdr.Values("From"),
		dkimSignature:         hdr.Values("DKIM-Signature"),
		authenticationResults: hdr.Values("Authentication-Results"),
	}
}

// scanFields reads the three fields of a plain header without building a
// header map: every line ends in LF or CRLF and has no other CR, the first
// is no continuation, and every field line has a colon after a valid
// name. A field's value is what textproto.ReadHeader makes of it: its
// lines, each trimmed of spaces and tabs, the empty ones left out, joined
// by one space. Anything else (ok false) is left to the full parser, which
// stops at such a line.
func scanFields(b []byte) (hdr headerFields, ok bool) {
	if len(b) > 0 && isSpaceOrTab(b[0]) {
		return hdr, false
	}
	var target *[]string // where the field being read goes; nil: not wanted
	var value []byte     // its value so far
	flush := func() {
		if target != nil {
			*target = append(*target, string(value))
		}
		target, value = nil, value[:0]
	}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return hdr, false // a last line without an end
		}
		line := b[:nl]
		b = b[nl+1:]
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if bytes.IndexByte(line, '\r') >= 0 {
			return hdr, false
		}
		if len(line) == 0 {
			break // the end of the header
		}
		if isSpaceOrTab(line[0]) { // a continuation of the field above
			if target != nil {
				value = appendPart(value, line)
			}
			continue
		}
		flush()
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return hdr, false
		}
		name := trimSpaceTab(line[:colon])
		for _, c := range name {
			if c < 33 || c > 126 { // ':' cannot occur before the first colon
				return hdr, false
			}
		}
		switch {
		case bytes.EqualFold(name, []byte("From")):
			target = &hdr.from
		case bytes.EqualFold(name, []byte("DKIM-Signature")):
			target = &hdr.dkimSignature
		case bytes.EqualFold(name, []byte("Authentication-Results")):
			target = &hdr.authenticationResults
		}
		if target != nil {
			value = appendPart(value, line[colon+1:])
		}
	}
	flush()
	return hdr, true
}

// appendPart adds one line of a field value, trimmed, after a space.
func appendPart(value, part []byte) []byte {
	part = trimSpaceTab(part)
	if len(part) == 0 {
		return value
	}
	if len(value) > 0 {
		value = append(value, ' ')
	}
	return append(value, part...)
}

func isSpaceOrTab(c byte) bool { return c == ' ' || c == '\t' }

func trimSpaceTab(b []byte) []byte {
	for len(b) > 0 && isSpaceOrTab(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpaceOrTab(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// lineBreaks removes CR and LF; built once, as building a Replacer costs
// more than most of its uses.
var lineBreaks = strings.NewReplacer("\r\n", "", "\n", "", "\r", "")

// unfold joins a folded field value onto one line.
func unfold(v string) string {
	return strings.TrimSpace(lineBreaks.Replace(v))
}
