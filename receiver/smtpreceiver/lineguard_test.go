package smtpreceiver

import (
	"bufio"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// transport opens a session that has said EHLO, over one way of connecting.
type transport struct {
	name string
	// tlsVersion pins the TLS version; 0 means plain text.
	tlsVersion uint16
	implicit   bool
	// cipher pins a TLS 1.2 suite; 0 lets the handshake choose.
	cipher uint16
}

var transports = []transport{
	{name: "plain"},
	{name: "STARTTLS 1.3", tlsVersion: tls.VersionTLS13},
	{name: "STARTTLS 1.2", tlsVersion: tls.VersionTLS12},
	{name: "STARTTLS 1.2 ChaCha20", tlsVersion: tls.VersionTLS12, cipher: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	{name: "STARTTLS 1.2 AES-256-GCM", tlsVersion: tls.VersionTLS12, cipher: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
	{name: "implicit TLS 1.3", tlsVersion: tls.VersionTLS13, implicit: true},
	{name: "implicit TLS 1.2", tlsVersion: tls.VersionTLS12, implicit: true},
}

// start runs a receiver for the transport (no AUTH) and returns a
// connected client past EHLO.
func (tr transport) start(t *testing.T, mod func(*Config)) (*rawClient, *consumertest.LogsSink) {
	t.Helper()
	r, clientTLS, sink := tr.receiver(t, mod)
	return tr.connect(t, r, clientTLS), sink
}

// receiver runs a receiver for the transport (no AUTH); clientTLS is what
// its clients use, nil for plain text.
func (tr transport) receiver(t *testing.T, mod func(*Config)) (*smtpReceiver, *tls.Config, *consumertest.LogsSink) {
	t.Helper()
	sink := new(consumertest.LogsSink)
	r, clientTLS := tr.receiverTo(t, mod, sink)
	return r, clientTLS, sink
}

// receiverTo is receiver with the messages going to next.
func (tr transport) receiverTo(t *testing.T, mod func(*Config), next consumer.Logs) (*smtpReceiver, *tls.Config) {
	t.Helper()
	if tr.tlsVersion == 0 {
		return startReceiver(t, testConfig(mod), next), nil
	}
	cfg, clientTLS := secureConfig(t, func(c *Config) {
		c.Username, c.Password = "", ""
		c.TLS.Implicit = tr.implicit
		if mod != nil {
			mod(c)
		}
	})
	clientTLS.MinVersion, clientTLS.MaxVersion = tr.tlsVersion, tr.tlsVersion
	if tr.cipher != 0 {
		clientTLS.CipherSuites = []uint16{tr.cipher}
	}
	return startReceiver(t, cfg, next), clientTLS
}

// connect opens a session with r over the transport, past EHLO.
func (tr transport) connect(t *testing.T, r *smtpReceiver, clientTLS *tls.Config) *rawClient {
	t.Helper()
	if tr.implicit {
		conn, err := tls.Dial("tcp", r.addr(), clientTLS)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		c := &rawClient{t: t, conn: conn, rd: bufio.NewReader(conn)}
		require.True(t, strings.HasPrefix(c.reply(), "220 "))
		c.expect("EHLO client.example.com", "250")
		return c
	}
	c := dial(t, r.addr())
	c.expect("EHLO client.example.com", "250")
	if tr.tlsVersion == 0 {
		return c
	}
	require.NoError(t, c.startTLS(clientTLS))
	if tr.cipher != 0 {
		require.Equal(t, tr.cipher, c.conn.(*tls.Conn).ConnectionState().CipherSuite)
	}
	c.expect("EHLO client.example.com", "250")
	return c
}

// Issue 10.1: a line inside DATA or BDAT is limited only by
// max_message_bytes, over every transport, and the record keeps it whole.
func TestLongMessageLinesAccepted(t *testing.T) {
	for _, tr := range transports {
		for _, size := range []int{6000, 100_000, 1 << 20} {
			line := "<p>" + strings.Repeat("x", size-7) + "</p>"
			msg := "Subject: long line\r\n\r\n" + line + "\r\n"
			t.Run(tr.name+"/DATA/"+strconv.Itoa(size), func(t *testing.T) {
				c, sink := tr.start(t, nil)
				assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, msg))
				// The next reply answers the next command: nothing extra
				// was sent after the 250.
				c.expect("NOOP", "250 ")
				requireBodyLine(t, sink, line)
			})
			t.Run(tr.name+"/BDAT/"+strconv.Itoa(size), func(t *testing.T) {
				c, sink := tr.start(t, nil)
				c.expect("MAIL FROM:<a@example.com>", "250")
				c.expect("RCPT TO:<b@example.com>", "250")
				c.send("BDAT " + strconv.Itoa(len(msg)) + " LAST\r\n" + msg)
				assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
				c.expect("NOOP", "250 ")
				requireBodyLine(t, sink, line)
			})
		}
	}
}

// requireBodyLine requires one record whose body is line, kept whole.
func requireBodyLine(t *testing.T, sink *consumertest.LogsSink, line string) {
	t.Helper()
	require.Len(t, records(sink), 1)
	body, _ := records(sink)[0].Body().Map().AsRaw()["body"].(string)
	body = strings.TrimRight(body, "\r\n")
	assert.True(t, body == line, "body of %d bytes differs from the line of %d bytes", len(body), len(line))
}

// Command lines keep max_line_length (CRLF included): one byte more is
// refused once, with a permanent 500, and the connection closes.
func TestLongCommandLineRefused(t *testing.T) {
	for _, tr := range transports {
		for _, limit := range []int{512, 1000, 4096, 10000} {
			t.Run(tr.name+"/"+strconv.Itoa(limit), func(t *testing.T) {
				c, _ := tr.start(t, func(c *Config) { c.MaxLineLength = limit })
				noop := func(n int) string { return "NOOP " + strings.Repeat("x", n-len("NOOP \r\n")) }
				c.expect(noop(limit), "250 ")
				c.send(noop(limit+1) + "\r\n")
				assert.Equal(t, "500 5.4.0 Too long line, closing connection", c.reply())
				assert.True(t, c.closed())
			})
		}
	}
}

// A client that pipelines a transaction, with command lines split across
// reads and a BDAT chunk of one long line in the same write, is served
// without a false refusal, and command lines after the chunk are limited
// again.
func TestPipelinedTransactionWithLongChunk(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, nil)
			msg := "Subject: pipelined\r\n\r\n" + strings.Repeat("y", 50_000) + "\r\n"
			var b strings.Builder
			b.WriteString("MAIL FROM:<a@example.com>\r\n")
			for i := range 90 { // well over one 4 KiB read of commands
				b.WriteString("RCPT TO:<recipient-number-" + strconv.Itoa(i) + "@example.com>\r\n")
			}
			b.WriteString("BDAT " + strconv.Itoa(len(msg)) + " LAST\r\n" + msg)
			b.WriteString("MAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n")
			c.send(b.String())
			assert.True(t, strings.HasPrefix(c.reply(), "250 ")) // MAIL
			for range 90 {
				assert.True(t, strings.HasPrefix(c.reply(), "250 "))
			}
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			assert.True(t, strings.HasPrefix(c.reply(), "250 "))
			assert.True(t, strings.HasPrefix(c.reply(), "250 "))
			assert.True(t, strings.HasPrefix(c.reply(), "354 "))
			c.send(dotTerminated("Subject: second\r\n\r\n" + strings.Repeat("z", 20_000)))
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			require.Len(t, records(sink), 2)

			c.send("NOOP " + strings.Repeat("x", 5000) + "\r\n")
			assert.Equal(t, "500 5.4.0 Too long line, closing connection", c.reply())
		})
	}
}

// A refused DATA leaves the following lines under the command limit.
func TestRefusedDataKeepsTheCommandLimit(t *testing.T) {
	c, _ := transports[0].start(t, nil)
	c.expect("DATA", "502 ") // no transaction
	c.send("NOOP " + strings.Repeat("x", 5000) + "\r\n")
	assert.Equal(t, "500 5.4.0 Too long line, closing connection", c.reply())
}

// Issue 10.2: a message of exactly max_message_bytes is accepted and one
// byte more gets 552, through DATA, BDAT and SIZE= alike.
func TestMessageSizeLimitIsExact(t *testing.T) {
	const limit = 2000
	message := func(size int) string {
		head := "Subject: exact\r\n\r\n"
		return head + strings.Repeat("a", size-len(head)-2) + "\r\n"
	}
	for _, tr := range transports[:2] {
		for _, tc := range []struct {
			size int
			want string
		}{
			{limit - 1, "250 2.0.0"},
			{limit, "250 2.0.0"},
			{limit + 1, "552 5.3.4"},
		} {
			t.Run(tr.name+"/"+strconv.Itoa(tc.size), func(t *testing.T) {
				c, sink := tr.start(t, func(c *Config) { c.MaxMessageBytes = limit })
				msg := message(tc.size)
				require.Len(t, msg, tc.size)

				c.expect("MAIL FROM:<a@example.com> SIZE="+strconv.Itoa(tc.size), tc.want[:3])
				c.expect("RSET", "250")
				c.expect("MAIL FROM:<a@example.com>", "250")
				c.expect("RCPT TO:<b@example.com>", "250")
				c.expect("DATA", "354")
				c.send(dotTerminated(msg))
				assert.True(t, strings.HasPrefix(c.reply(), tc.want), "DATA")

				c.expect("MAIL FROM:<a@example.com>", "250")
				c.expect("RCPT TO:<b@example.com>", "250")
				c.send("BDAT " + strconv.Itoa(tc.size) + " LAST\r\n" + msg)
				assert.True(t, strings.HasPrefix(c.reply(), tc.want), "BDAT")

				// Dot-stuffing is not counted: a line starting with "." is
				// sent as ".." and counts once.
				stuffed := "." + msg[1:]
				c.expect("MAIL FROM:<a@example.com>", "250")
				c.expect("RCPT TO:<b@example.com>", "250")
				c.expect("DATA", "354")
				c.send(dotTerminated("." + stuffed))
				assert.True(t, strings.HasPrefix(c.reply(), tc.want), "DATA with dot-stuffing")

				c.expect("NOOP", "250")
				if tc.size <= limit {
					assert.Len(t, records(sink), 3)
				} else {
					assert.Empty(t, records(sink))
				}
			})
		}
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		line       string
		verb, arg  string
		recognised bool
	}{
		{"DATA\r\n", "DATA", "", true},
		{"data\r\n", "DATA", "", true},
		{"DATA   \r\n", "DATA", "", true},
		{"BDAT 10 LAST\r\n", "BDAT", "10 LAST", true},
		{"BDAT\r\n", "BDAT", "", true},
		{"BDATX 10\r\n", "", "", false},
		{"BDA\r\n", "", "", false},
	}
	for _, tt := range tests {
		verb, arg, ok := splitCommand(tt.line, true)
		assert.Equal(t, tt.recognised, ok, tt.line)
		assert.Equal(t, tt.verb, verb, tt.line)
		assert.Equal(t, tt.arg, arg, tt.line)
	}
	_, _, ok := splitCommand("BDAT 10", false)
	assert.False(t, ok, "a line longer than what was kept is never taken for BDAT")
}

func TestBDATSize(t *testing.T) {
	tests := []struct {
		arg  string
		size uint64
		ok   bool
	}{
		{"10", 10, true},
		{"10 LAST", 10, true},
		{"10 last", 10, true},
		{"4294967295 LAST", 4294967295, true},
		{"4294967296", 0, false},
		{"-1", 0, false},
		{"10 NOW", 0, false},
		{"10 LAST X", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		size, ok := bdatSize(tt.arg)
		assert.Equal(t, tt.ok, ok, tt.arg)
		if ok {
			assert.Equal(t, tt.size, size, tt.arg)
		}
	}
}

// TestDataBytesFindsTheEnd: the DATA body is skipped up to each CR at once;
// the end it finds must be the one dotState finds byte by byte, however
// the body is split into reads.
func TestDataBytesFindsTheEnd(t *testing.T) {
	bodies := []string{
		"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		".\r\nMAIL FROM:<a@example.com>\r\n",
		"line\r\n..stuffed\r\n.\r\n",
		"bare\rcr\r\r\n.\r\nnot the end: a CR before the CRLF\r\n.\r\nRSET\r\n",
		"bare\nlf\n.\r\nnot the end\r\n.\r\n",
		"dot.\r\n.x\r\n.\r\r\n.\r\n",
		"no end at all\r\n.",
	}
	// reference follows the body one byte at a time.
	reference := func(body string) int {
		d := dotLineStart
		for i := 0; i < len(body); i++ {
			var done bool
			if d, done = d.next(body[i]); done {
				return i + 1
			}
		}
		return -1
	}
	for _, body := range bodies {
		want := reference(body)
		for split := 0; split <= len(body); split++ {
			g := newLineGuard(1000)
			g.mode, g.dot = modeData, dotLineStart
			got := -1
			if rest := g.dataBytes([]byte(body[:split])); g.mode != modeData {
				got = split - len(rest)
			} else if rest := g.dataBytes([]byte(body[split:])); g.mode != modeData {
				got = len(body) - len(rest)
			}
			require.Equal(t, want, got, "body %q split at %d", body, split)
		}
	}
}
