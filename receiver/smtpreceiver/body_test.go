package smtpreceiver

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// unstuffReference reads a DATA body the slow way, one byte at a time, as
// bodyReader must: it returns the body, what follows the end marker, and
// whether the marker came.
func unstuffReference(in []byte) (body, rest []byte, ended bool) {
	d := dotLineStart
	for i, ch := range in {
		next, end := d.next(ch)
		switch {
		case end:
			return body, in[i+1:], true
		case d == dotLineStart && ch == '.', d == dotDot && ch == '\r':
		case d == dotDotCR:
			body = append(body, '\r', ch)
		default:
			body = append(body, ch)
		}
		d = next
	}
	return body, nil, false
}

// readBodyIn reads a body from a plainConn whose client's bytes arrive in
// chunks, through a raw buffer of rawSize bytes and reads of outSize
// bytes; it returns the body, the error that ended it, and what plainConn
// keeps for go-smtp afterwards.
func readBodyIn(chunks [][]byte, rawSize, outSize int) (body []byte, err error, rest []byte) {
	src := &chunkConn{chunks: chunks}
	c := &plainConn{guard: newLineGuard(1 << 20), rw: src, replyStart: true, bufs: newReadBuffers(rawSize)}
	c.guard.mode = modeData
	c.bodyReady.Store(true)
	r := c.takeBody()
	out := make([]byte, outSize)
	for range 1 << 20 {
		var n int
		n, err = r.Read(out)
		body = append(body, out[:n]...)
		if err != nil {
			break
		}
	}
	// What go-smtp reads next: the empty body, then the commands.
	p := make([]byte, 4096)
	n, _ := c.Read(p)
	if string(p[:n]) != endOfEmptyBody {
		return body, err, []byte("no empty body for go-smtp: " + string(p[:n]))
	}
	rest = append([]byte(nil), c.carry...)
	for _, chunk := range src.chunks { // not read yet
		rest = append(rest, chunk...)
	}
	return body, err, rest
}

func TestBodyReader(t *testing.T) {
	tests := []struct{ name, in, body, rest string }{
		{"plain", "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", "Subject: x\r\n\r\nhello\r\n", "QUIT\r\n"},
		{"empty", ".\r\nRSET\r\n", "", "RSET\r\n"},
		{"dot-stuffed", "..\r\n..x\r\n.\r\n", ".\r\n.x\r\n", ""},
		{"dot then CR", ".\rx\r\n.\r\n", "\rx\r\n", ""},
		{"bare LF is no line end", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", ""},
		{"bare CR is no line end", "a\r.\r\n.\r\n", "a\r.\r\n", ""},
	}
	for _, tt := range tests {
		body, err, rest := readBodyIn([][]byte{[]byte(tt.in)}, 4096, 4096)
		require.ErrorIs(t, err, io.EOF, tt.name)
		assert.Equal(t, tt.body, string(body), tt.name)
		assert.Equal(t, tt.rest, string(rest), tt.name)
	}
	_, err, _ := readBodyIn([][]byte{[]byte("no end\r\n")}, 4096, 4096)
	assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "a client gone mid-body: %v", err)
}

// FuzzBodyReader: bodyReader gives exactly the reference's body and
// leftovers, however the bytes arrive and whatever buffer sizes read them.
func FuzzBodyReader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
		"..\r\n.\r\r\n.\r\n",
		".\rx.\r.\r\n.\r\n",
		"a\r\r\n.\r\nMAIL FROM:<a@example.com>\r\n",
	} {
		f.Add([]byte(s), uint8(3), uint8(1), uint8(5))
	}
	f.Fuzz(func(t *testing.T, in []byte, split, raw, out uint8) {
		wantBody, wantRest, ended := unstuffReference(in)
		i := 0
		if len(in) > 0 {
			i = int(split) % len(in)
		}
		body, err, rest := readBodyIn([][]byte{bytes.Clone(in[:i]), bytes.Clone(in[i:])}, int(raw)%64+1, int(out)%64+1)
		if !bytes.Equal(body, wantBody) {
			t.Fatalf("body of %q: %q, want %q", in, body, wantBody)
		}
		if ended {
			if err != io.EOF || !bytes.Equal(rest, wantRest) {
				t.Fatalf("after %q: err %v, rest %q, want EOF and %q", in, err, rest, wantRest)
			}
		} else if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("unended %q: err %v", in, err)
		}
	})
}

// The rest of a body refused as too large is read under the transfer's
// clock: a client still streaming it, for longer than the idle timeout
// but steadily, gets the 552, not an idle-timeout 421 (which would make
// it retry the same message forever).
func TestOversizeBodyRestIsReadAsATransfer(t *testing.T) {
	r := startReceiver(t, testConfig(func(c *Config) {
		c.Timeout = 1
		c.MaxMessageBytes = 1000
	}), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.openData()
	line := strings.Repeat("x", 248) + "\r\n"
	for range 10 { // 2500 bytes over about 3 s, 300 ms apart
		c.send(line)
		time.Sleep(300 * time.Millisecond)
	}
	c.send(".\r\n")
	assert.Equal(t, "552 5.3.4 Maximum message size exceeded", c.reply())
	c.expect("NOOP", "250 ")
}
