package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bytes"
	"io"
)

// bodyReader reads a DATA body for the session straight from plainConn,
// a run of bytes at a time, instead of through go-smtp's DATA reader,
// which takes the body one byte at a time to undo dot-stuffing (the
// largest cost of a small message after the system calls; see
// docs/benchmarks.md). go-smtp then reads an empty body: plainConn hands
// it a bare end marker once the session is done.
//
// The framing is go-smtp's exactly (dotState, which the lineGuard uses
// too): the body ends at a line "." after a CRLF; a bare CR or LF never
// starts a line. Of a line that starts with ".", the "." is removed (RFC
// 5321 4.5.2; go-smtp also drops a CR right after such a dot).
type bodyReader struct {
	c   *plainConn
	raw *[]byte // read from the connection, from the receiver's buffer pool
	r   int     // raw[r:w] is not processed yet
	w   int
	dot dotState
	// verbatim: the next byte is emitted as it is (it followed ".\r", whose
	// CR was emitted at the end of the last read's room).
	verbatim bool
	ended    bool
	err      error
}

// takeBody hands the session the body of the DATA command go-smtp has
// just answered with 354; nil for BDAT, whose chunks go-smtp reads in
// bulk already.
func (c *plainConn) takeBody() *bodyReader {
	if c.bufs == nil || !c.bodyReady.CompareAndSwap(true, false) {
		return nil
	}
	c.body = &bodyReader{c: c, raw: c.bufs.get()}
	return c.body
}

func (b *bodyReader) Read(out []byte) (int, error) {
	n := 0
	for n == 0 && len(out) > 0 {
		if b.ended {
			return 0, io.EOF
		}
		if b.r == b.w {
			if b.err != nil {
				return 0, b.err
			}
			if err := b.fill(); err != nil && b.r == b.w {
				return 0, err
			}
		}
		n = b.unstuff(out)
	}
	return n, nil
}

// fill reads more of the body.
func (b *bodyReader) fill() error {
	// The 354 is still held (go-smtp has not read since): send it.
	if err := b.c.flush(); err != nil {
		b.err = err
		return err
	}
	m, err := b.c.fill(*b.raw)
	b.r, b.w = 0, m
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the client left in the middle of the body
	}
	b.err = err
	return err
}

// unstuff moves body bytes from raw to out and returns how many; at the
// end marker it gives the rest of raw back to plainConn as commands.
func (b *bodyReader) unstuff(out []byte) int {
	n := 0
	for b.r < b.w && n < len(out) {
		if b.verbatim {
			out[n] = (*b.raw)[b.r]
			n, b.r, b.verbatim, b.dot = n+1, b.r+1, false, dotText
			continue
		}
		if b.dot == dotText {
			// Inside a line only a CR matters: copy up to it at once.
			run := (*b.raw)[b.r:b.w]
			if room := len(out) - n; len(run) > room {
				run = run[:room]
			}
			if i := bytes.IndexByte(run, '\r'); i >= 0 {
				run, b.dot = run[:i+1], dotCR
			}
			n += copy(out[n:], run)
			b.r += len(run)
			continue
		}
		ch := (*b.raw)[b.r]
		b.r++
		next, end := b.dot.next(ch)
		switch {
		case end:
			b.end()
			return n
		case b.dot == dotLineStart && ch == '.', b.dot == dotDot && ch == '\r':
			// A leading dot is removed; the CR after it waits for the
			// byte that says whether this is the end.
		case b.dot == dotDotCR:
			// ".\r" and not the end: the CR is body, and so is ch.
			out[n] = '\r'
			n++
			if n == len(out) {
				b.r--
				b.verbatim = true
				b.dot = next
				return n
			}
			out[n] = ch
			n++
		default:
			out[n] = ch
			n++
		}
		b.dot = next
	}
	return n
}

// end finishes the body: what followed the end marker goes back to
// plainConn, and the lineGuard counts the message as answered next.
func (b *bodyReader) end() {
	b.ended = true
	if b.r < b.w {
		b.c.keep(b.err, false, (*b.raw)[b.r:b.w])
		b.err = nil
	}
	b.release()
	b.c.guard.bodyRead()
}

func (b *bodyReader) release() {
	if b.raw != nil {
		b.c.bufs.put(b.raw)
		b.raw = nil
	}
	b.r, b.w = 0, 0
}

// finish reads what the session left of the body, to the end marker; it
// returns the error that stopped it, if the end never came.
func (b *bodyReader) finish() error {
	var scratch [512]byte
	for !b.ended {
		if _, err := b.Read(scratch[:]); err != nil && !b.ended {
			b.release()
			return err
		}
	}
	return nil
}
