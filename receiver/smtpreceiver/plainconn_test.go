package smtpreceiver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// Issue 10.10: RCPT TO:<postmaster> without a domain is accepted (RFC 5321
// 4.5.1) over every transport, in any spelling go-smtp accepts for RCPT,
// and even when the line arrives one byte at a time; the record names the
// receiver's postmaster.
func TestPostmasterWithoutDomain(t *testing.T) {
	lines := []string{
		"RCPT TO:<postmaster>",
		"rcpt to:<Postmaster>",
		"RCPT   To: \t<POSTMASTER>",
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, func(cfg *Config) {
				cfg.Domain = "mx.example.org"
				cfg.AcceptedRecipients = []string{"dmarc@example.org"}
			})
			for _, line := range lines {
				c.expect("MAIL FROM:<a@example.com>", "250 ")
				c.expect(line, "250 2.1.5 Recipient OK")
				c.expect("RCPT TO:<b@example.com>", "550 5.1.1 No such recipient here")
				c.expect("DATA", "354 ")
				c.send(dotTerminated(simpleMessage))
				require.Equal(t, "250 2.0.0 OK: queued", c.reply(), line)
			}
			// One byte per write: the line start is kept back until it
			// can be told apart.
			c.expect("MAIL FROM:<a@example.com>", "250 ")
			for _, b := range []byte("RCPT TO:<postmaster>\r\n") {
				c.send(string(b))
			}
			require.Equal(t, "250 2.1.5 Recipient OK", c.reply())
			c.expect("RSET", "250 ")

			recs := records(sink)
			require.Len(t, recs, len(lines))
			for i, r := range recs {
				to, ok := r.Attributes().Get("smtp.rcpt_to")
				require.True(t, ok)
				assert.Equal(t, []any{strings.TrimSuffix(strings.SplitAfter(lines[i], "<")[1], ">") + "@mx.example.org"}, to.Slice().AsRaw())
			}
		})
	}
}

// A path that only starts like postmaster's is left to go-smtp.
func TestPostmasterLookalikesUntouched(t *testing.T) {
	c, sink := transports[0].start(t, nil)
	c.expect("MAIL FROM:<a@example.com>", "250 ")
	c.expect("RCPT TO:<postmaster@example.com>", "250 ")
	c.expect("RCPT TO:<postmasters>", "501 ")
	c.expect("RCPT TO:<postmaster", "501 ")
	c.expect("RCPT TO:postmaster", "501 ")
	c.expect("RCPTTO:<postmaster>", "501 ")
	c.expect("DATA", "354 ")
	c.send(dotTerminated(simpleMessage))
	require.Equal(t, "250 2.0.0 OK: queued", c.reply())
	to, _ := records(sink)[0].Attributes().Get("smtp.rcpt_to")
	assert.Equal(t, []any{"postmaster@example.com"}, to.Slice().AsRaw())
}

func TestPostmasterRecipient(t *testing.T) {
	tests := []struct {
		line  string
		gt    int
		state pathState
	}{
		{"RCPT TO:<postmaster>\r\n", 19, pathMatch},
		{"rcpt to:<PostMaster> NOTIFY=NEVER\r\n", 19, pathMatch},
		{"RCPT  TO:\t <postmaster>\r\n", 22, pathMatch},
		{"RCPT TO:<postmaster>", 19, pathMatch},
		{"R", 0, pathMaybe},
		{"RCPT TO:<post", 0, pathMaybe},
		{"RCPT   ", 0, pathMaybe},
		{"RCPT TO:", 0, pathMaybe},
		{"RCPT TO:<postmaster@example.org>\r\n", 0, pathNo},
		{"RCPT TO:<postmasters>\r\n", 0, pathNo},
		{"RCPT FROM:<postmaster>\r\n", 0, pathNo},
		{"MAIL FROM:<postmaster>\r\n", 0, pathNo},
		{"RCPTTO:<postmaster>\r\n", 0, pathNo},
		{"RCPT TO:<@relay.example:postmaster>\r\n", 0, pathNo},
	}
	for _, tt := range tests {
		gt, state := postmasterRecipient([]byte(tt.line))
		assert.Equal(t, tt.state, state, tt.line)
		assert.Equal(t, tt.gt, gt, tt.line)
		if state == pathMatch {
			assert.Equal(t, byte('>'), tt.line[gt], tt.line)
		}
	}
}

func TestRewordedReplies(t *testing.T) {
	tests := map[string]string{
		"250 2.0.0 Roger, accepting mail from <a@example.com>\r\n": "250 2.1.0 Sender OK\r\n",
		"250 2.0.0 I'll make sure <b@example.com> gets this\r\n":   "250 2.1.5 Recipient OK\r\n",
		"250 2.0.0 I have successfully done nothing\r\n":           "250 2.0.0 OK\r\n",
		"250 2.0.0 OK: queued\r\n":                                 "250 2.0.0 OK: queued\r\n",
		"250-mx.example.org Hello x\r\n":                           "250-mx.example.org Hello x\r\n",
		"550 5.0.0 Roger, accepting mail from <a@example.com>\r\n": "550 5.0.0 Roger, accepting mail from <a@example.com>\r\n",
	}
	for in, want := range tests {
		assert.Equal(t, want, string(reworded([]byte(in))), in)
	}
}

// STARTTLS is answered by the receiver: refused where RFC 3207 and a
// careful MTA refuse it, with the commands around it answered in order.
func TestSTARTTLSRefusals(t *testing.T) {
	cfg, clientTLS := secureConfig(t, func(c *Config) { c.Username, c.Password = "", "" })
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("STARTTLS", "503 5.5.1 Send EHLO first")
	c.expect("EHLO x", "250")
	c.expect("STARTTLS now", "501 5.5.4 STARTTLS takes no parameters")
	c.expect("MAIL FROM:<a@example.com>", "250 ")
	c.expect("STARTTLS", "503 5.5.1 STARTTLS not allowed during a mail transaction")
	// A refused STARTTLS keeps what was pipelined after it.
	c.send("RSET\r\nSTARTTLS\r\nNOOP\r\n")
	assert.Equal(t, "250 2.0.0 Session reset", c.reply())
	// After RSET there is no transaction: this STARTTLS is taken, and the
	// pipelined NOOP is plain text sent before TLS: dropped.
	assert.Equal(t, "220 2.0.0 Ready to start TLS", c.reply())
	tc := tls.Client(c.conn, clientTLS)
	require.NoError(t, tc.Handshake())
	c.conn, c.rd = tc, bufio.NewReader(tc)
	c.expect("STARTTLS", "503 5.5.1 TLS already active")
	c.expect("MAIL FROM:<a@example.com>", "503 5.5.1 Send EHLO first")
	ehlo := c.expect("EHLO inside.example.com", "250")
	assert.NotContains(t, ehlo, "STARTTLS", "not offered inside TLS")
	c.expect("STARTTLS", "503 5.5.1 TLS already active")
	c.expect("MAIL FROM:<a@example.com>", "250 2.1.0")
}

// After STARTTLS the session starts over: the EHLO name recorded is the
// one given inside TLS, and the record says TLS.
func TestSTARTTLSForgetsThePlainTextSession(t *testing.T) {
	cfg, clientTLS := secureConfig(t, func(c *Config) { c.Username, c.Password = "", "" })
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	c := dial(t, r.addr())
	c.expect("EHLO outside.example.com", "250")
	require.NoError(t, c.startTLS(clientTLS))
	c.expect("EHLO inside.example.com", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	attrs := records(sink)[0].Attributes().AsRaw()
	assert.Equal(t, "inside.example.com", attrs["smtp.helo"])
	assert.Contains(t, []any{"1.2", "1.3"}, attrs["tls.protocol.version"])
}

// With implicit TLS there is nothing to start.
func TestSTARTTLSOnImplicitTLS(t *testing.T) {
	c, _ := transport{name: "implicit", tlsVersion: tls.VersionTLS13, implicit: true}.start(t, nil)
	c.expect("STARTTLS", "503 5.5.1 TLS already active")
	c.expect("NOOP", "250 2.0.0 OK")
}

// A handshake that fails after STARTTLS closes the connection.
func TestSTARTTLSFailedHandshakeCloses(t *testing.T) {
	cfg, _ := secureConfig(t, nil)
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("STARTTLS", "220 ")
	c.send("this is not a TLS client hello\r\n")
	assert.True(t, c.closed())
}

// chunkConn is a connection whose reads return the given chunks, one per
// read, and which keeps what is written to it.
type chunkConn struct {
	net.Conn
	chunks  [][]byte
	written bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error)      { return c.written.Write(p) }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// plainStream is what go-smtp would read from a plainConn (with STARTTLS
// watched, no session) whose client's bytes arrive in the given chunks,
// and what plainConn itself answered.
func plainStream(chunks [][]byte) (read, answered string) {
	src := &chunkConn{chunks: chunks}
	c := &plainConn{guard: newLineGuard(1 << 20), startTLS: &tls.Config{}, postmaster: "@mx.example.org", rw: src, replyStart: true}
	c.guard.watchTLS = true
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for range 100000 {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return out.String(), src.written.String()
}

// FuzzPlainConnSplit: what go-smtp reads, and what plainConn answers, do
// not depend on how the client's bytes are split into reads (plainConn
// keeps back line starts it cannot judge yet).
func FuzzPlainConnSplit(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<postmaster>\r\nRCPT TO:<b@example.com>\r\n",
		"STARTTLS\r\nNOOP\r\nSTARTTLS x\r\nrcpt to: <PostMaster> NOTIFY=NEVER\r\n",
		"BDAT 20 LAST\r\nRCPT TO:<postmaster>\r\nRCPT TO:<postmaster>\r\n",
		"STARTT",
		"RCPT TO:<postm",
		"RCPT" + strings.Repeat(" ", 70) + "TO:<postmaster>\r\n",
		"STARTTLS" + strings.Repeat("0", 70) + "\n",
	} {
		f.Add([]byte(s), uint8(1), uint8(7))
	}
	f.Fuzz(func(t *testing.T, input []byte, a, b uint8) {
		if len(input) > maxHeldLine {
			// A line start longer than that is not kept back: it goes to
			// go-smtp as it is, whose answer this harness does not play.
			return
		}
		wantRead, wantAnswered := plainStream([][]byte{bytes.Clone(input)})
		// Split in three at a and b (mod the length).
		i, j := 0, 0
		if len(input) > 0 {
			i, j = int(a)%len(input), int(b)%len(input)
		}
		i, j = min(i, j), max(i, j)
		read, answered := plainStream([][]byte{bytes.Clone(input[:i]), bytes.Clone(input[i:j]), bytes.Clone(input[j:])})
		if read != wantRead || answered != wantAnswered {
			t.Fatalf("input %q split at %d, %d:\nread %q\nwant %q\nanswered %q\nwant %q", input, i, j, read, wantRead, answered, wantAnswered)
		}
		// One byte per read, too.
		var bytewise [][]byte
		for k := range input {
			bytewise = append(bytewise, []byte{input[k]})
		}
		read, answered = plainStream(bytewise)
		if read != wantRead || answered != wantAnswered {
			t.Fatalf("input %q byte by byte:\nread %q\nwant %q\nanswered %q\nwant %q", input, read, wantRead, answered, wantAnswered)
		}
	})
}

func TestPlainStreamRewrites(t *testing.T) {
	read, answered := plainStream([][]byte{[]byte("RCPT TO:<postmaster>\r\nSTARTTLS\r\nNOOP\r\n")})
	assert.Equal(t, "RCPT TO:<postmaster@mx.example.org>\r\nNOOP\r\n", read)
	assert.Equal(t, replyTLSNeedsHello, answered, "STARTTLS never reaches go-smtp")
}

// Replies to pipelined commands, and the lines of an EHLO reply, leave in
// one write: a client that sent them at once reads them at once.
func TestPipelinedRepliesInOneWrite(t *testing.T) {
	r := startReceiver(t, testConfig(nil), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	for _, tt := range []struct {
		send string
		want []string
	}{
		{"EHLO x\r\n", []string{"250-", "250-PIPELINING", "250 "}},
		{"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n",
			[]string{"250 2.1.0 Sender OK", "250 2.1.5 Recipient OK", "250 2.1.5 Recipient OK", "354 "}},
	} {
		c.send(tt.send)
		require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		buf := make([]byte, 4096)
		n, err := c.conn.Read(buf)
		require.NoError(t, err)
		got := string(buf[:n])
		for _, w := range tt.want {
			assert.Contains(t, "\n"+got, "\n"+w, "after %q, one read: %q", tt.send, got)
		}
		assert.True(t, strings.HasSuffix(got, "\r\n"), got)
	}
}

// Between "220 Ready to start TLS" and the client's hello only TLS may
// cross: a shutdown (or timeout) then closes the connection without a
// plain-text 421 in the middle of the handshake.
func TestShutdownWhileAwaitingTLSHello(t *testing.T) {
	cfg, _ := secureConfig(t, func(c *Config) { c.Username, c.Password = "", "" })
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("STARTTLS", "220 2.0.0 Ready to start TLS")
	done := shutdownInBackground(t, r)
	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	rest, err := io.ReadAll(c.rd)
	assert.NoError(t, err, "the connection is closed, not left waiting")
	assert.Empty(t, string(rest), "nothing in plain text after the 220")
	<-done
}
