package mailconv

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-message/charset"
)

// attachment describes one attached (or inline non-text) part.
type attachment struct {
	filename       string
	contentType    string
	disposition    string
	contentID      string
	size           int64
	sha256         string
	content        []byte // only with IncludeAttachmentContent and within the cap
	contentOmitted bool   // content requested but larger than the cap
	// For message/rfc822: the inner message's subject and From.
	isMessage   bool
	subject     string
	messageFrom string
}

// attachment hashes the decoded part while streaming it; nothing but the
// optional, capped content is kept.
func (w *walker) attachment(e *entity, r io.Reader) {
	a := attachment{
		filename:    w.filename(e),
		contentType: e.mediaType,
		disposition: e.disposition,
		contentID:   trimAngles(decodeHeaderValue("Content-ID", e.header.get("Content-ID"), &w.msg.errs)),
	}
	bad := func(msg string) { w.msg.errs.addf("attachment %q: %s", snippet([]byte(a.filename)), msg) }
	dec := transferDecoder(e.header.get("Content-Transfer-Encoding"), r, bad)
	defer releaseDecoder(dec)

	h := sha256.New()
	cnt := &countWriter{}
	sinks := []io.Writer{h, cnt}
	var content *capBuffer
	if w.opts.IncludeAttachmentContent {
		content = &capBuffer{max: w.opts.MaxAttachmentContentBytes}
		sinks = append(sinks, content)
	}
	sink := io.MultiWriter(sinks...)

	var err error
	if a.contentType == "message/rfc822" || a.contentType == "message/global" {
		// Everything read through the tee is hashed, including what bufio
		// buffers while the inner header is parsed.
		br := bufio.NewReader(io.TeeReader(dec, sink))
		inner := readHeader(br, w.opts.MaxHeaderBytes, &w.msg.errs, "attached message header")
		a.isMessage = true
		a.subject = decodeHeaderValue("Subject", inner.get("Subject"), &w.msg.errs)
		a.messageFrom = decodeHeaderValue("From", inner.get("From"), &w.msg.errs)
		_, err = io.Copy(io.Discard, br)
	} else {
		_, err = copyPooled(sink, dec)
	}
	w.noteErr(err)

	a.size = cnt.n
	a.sha256 = hex.EncodeToString(h.Sum(nil))
	if content != nil {
		if content.overflow {
			a.contentOmitted = true
		} else {
			a.content = content.buf
		}
	}
	w.msg.attachments = append(w.msg.attachments, a)
}

// filename prefers Content-Disposition's filename over Content-Type's name,
// decoding RFC 2231 (also charsets mime.ParseMediaType refuses) and RFC 2047.
func (w *walker) filename(e *entity) string {
	name := e.dispParams["filename"]
	if name == "" {
		name = rfc2231Param(e.header.get("Content-Disposition"), "filename")
	}
	if name == "" {
		name = e.params["name"]
	}
	if name == "" {
		name = rfc2231Param(e.header.get("Content-Type"), "name")
	}
	return decodeHeaderValue("filename", name, &w.msg.errs)
}

// rfc2231Param decodes an extended parameter (name*=charset'lang'%XX.. or
// name*0*=.. continuations) with any charset go-message knows. The standard
// library only accepts UTF-8 and US-ASCII there and drops the rest.
func rfc2231Param(headerValue, name string) string {
	type piece struct {
		idx     int
		value   string
		encoded bool
	}
	var pieces []piece
	prefix := strings.ToLower(name) + "*"
	for _, p := range strings.Split(headerValue, ";")[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rest := k[len(prefix):]
		pc := piece{value: v}
		if strings.HasSuffix(rest, "*") {
			pc.encoded = true
			rest = strings.TrimSuffix(rest, "*")
		} else if rest == "" {
			pc.encoded = true // name*=...
		}
		if rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n > 999 {
				continue
			}
			pc.idx = n
		}
		pieces = append(pieces, pc)
	}
	if len(pieces) == 0 {
		return ""
	}
	sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].idx < pieces[j].idx })
	cs := ""
	var raw strings.Builder
	for i, pc := range pieces {
		v := pc.value
		if pc.encoded {
			if i == 0 {
				parts := strings.SplitN(v, "'", 3)
				if len(parts) == 3 {
					cs, v = parts[0], parts[2]
				}
			}
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
		}
		raw.WriteString(v)
	}
	out := raw.String()
	if cs != "" && !isUTF8Label(strings.ToLower(cs)) {
		if r, err := charset.Reader(cs, strings.NewReader(out)); err == nil {
			if b, err := io.ReadAll(r); err == nil {
				out = string(b)
			}
		}
	}
	return out
}

func trimAngles(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// capBuffer keeps writes up to max bytes; past that it drops everything and
// remembers the overflow, so an oversized attachment costs no memory.
type capBuffer struct {
	buf      []byte
	max      int
	overflow bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if c.overflow {
		return len(p), nil
	}
	if len(c.buf)+len(p) > c.max {
		c.overflow = true
		c.buf = nil
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}
