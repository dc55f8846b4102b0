package smtpreceiver

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

func TestMessageBecomesOneRecord(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.ID = 7; c.Tags = []string{"ups"} }), sink)
	c := dial(t, r.addr())

	ehlo := c.expect("EHLO client.example.com", "250-")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 26214400", "CHUNKING", "ENHANCEDSTATUSCODES"} {
		assert.Contains(t, ehlo, ext)
	}
	assert.NotContains(t, ehlo, "AUTH", "AUTH without credentials configured")
	assert.NotContains(t, ehlo, "STARTTLS", "STARTTLS without TLS configured")

	got := c.sendMail("alice@example.com", []string{"bob@example.com", "ops@example.com"}, simpleMessage)
	assert.Equal(t, "250 2.0.0 OK: queued", got)
	c.expect("QUIT", "221 2.0.0")

	recs := records(sink)
	require.Len(t, recs, 1, "one message with two recipients is one record")
	body := recs[0].Body().Map().AsRaw()
	assert.Equal(t, "alice@example.com", body["from"])
	assert.Equal(t, []any{"bob@example.com", "ops@example.com"}, body["to"])
	assert.Equal(t, "Disk almost full", body["subject"])
	assert.Equal(t, "/dev/sda1 is at 95%.\n", body["body"], "line ends are normalized to LF")
	assert.Equal(t, c.conn.LocalAddr().String(), body["remoteAddr"])
	headers := body["headers"].(map[string]any)
	assert.Equal(t, []any{"Disk almost full"}, headers["Subject"])

	res := sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, int64(7), res["device.id"])
	assert.Equal(t, "smtp", res["device.type"])
	assert.Equal(t, []any{"ups"}, res["device.tags"])
	assert.Equal(t, r.set.ID.Name(), res["device.name"], "name defaults to the component name")
}

// errConsumer fails every ConsumeLogs with err.
type errConsumer struct {
	consumertest.LogsSink
	err error
}

func (e *errConsumer) ConsumeLogs(context.Context, plog.Logs) error { return e.err }

func TestDataReplyFollowsThePipeline(t *testing.T) {
	internal := errors.New("exporter queue is full at 10.1.2.3:4317")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"accepted", nil, "250 2.0.0 OK: queued"},
		{"retryable", internal, "451 4.3.0 Temporary failure in the processing pipeline, try again later"},
		{"permanent", consumererror.NewPermanent(internal), "554 5.3.0 Message rejected by the processing pipeline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var next consumer.Logs = new(consumertest.LogsSink)
			if tt.err != nil {
				next = &errConsumer{err: tt.err}
			}
			r := startReceiver(t, testConfig(nil), next)
			c := dial(t, r.addr())
			c.expect("EHLO x", "250")
			got := c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, got, "10.1.2.3", "internal error text must not reach the client")
			// The session goes on after a failed message.
			c.expect("NOOP", "250 2.0.0")
		})
	}
}

func TestBasicCommands(t *testing.T) {
	r := startReceiver(t, testConfig(nil), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("MAIL FROM:<a@example.com>", "502 5.5.1 Please introduce yourself first.")
	c.expect("HELO x", "250 2.0.0 Hello x")
	c.expect("NOOP", "250 2.0.0 OK")
	c.expect("RCPT TO:<b@example.com>", "502 5.5.1 Missing MAIL FROM command.")
	c.expect("MAIL FROM:<a@example.com>", "250 2.1.0 Sender OK")
	c.expect("RCPT TO:<b@example.com>", "250 2.1.5 Recipient OK")
	c.expect("RSET", "250 2.0.0 Session reset")
	c.expect("DATA", "502 5.5.1 Missing RCPT TO command.")
	c.expect("VRFY root", "252 ")
	c.expect("QUIT", "221 2.0.0 Bye")
	assert.True(t, c.closed())
}

func TestNullSenderAndNulBytes(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a\x00b@example.com>", "501 5.1.7 Bad sender address syntax")
	c.expect("MAIL FROM:<>", "250 ") // bounces have the null sender
	c.expect("RCPT TO:<b\x00@example.com>", "501 5.1.3 Bad recipient address syntax")
	c.expect("RCPT TO:<b@example.com>", "250 ")
	c.expect("DATA", "354 ")
	c.send(dotTerminated(simpleMessage))
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
	require.Len(t, records(sink), 1)
	assert.Equal(t, "", records(sink)[0].Body().Map().AsRaw()["from"])
}

func TestMessageSizeLimit(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.MaxMessageBytes = 1000 }), sink)
	c := dial(t, r.addr())
	assert.Contains(t, c.expect("EHLO x", "250"), "SIZE 1000")
	c.expect("MAIL FROM:<a@example.com> SIZE=5000", "552 5.3.4")

	big := simpleMessage + strings.Repeat("0123456789012345678901234567890123456789\r\n", 50)
	got := c.sendMail("a@example.com", []string{"b@example.com"}, big)
	assert.Equal(t, "552 5.3.4 Maximum message size exceeded", got)
	assert.Empty(t, records(sink), "an oversized message is not recorded")

	// The session is still usable for a message within the limit.
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	assert.Len(t, records(sink), 1)
}

func TestRecipientLimit(t *testing.T) {
	r := startReceiver(t, testConfig(func(c *Config) { c.MaxRecipients = 2 }), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@example.com>", "250")
	c.expect("RCPT TO:<b1@example.com>", "250")
	c.expect("RCPT TO:<b2@example.com>", "250")
	c.expect("RCPT TO:<b3@example.com>", "452 4.5.3 Too many recipients")
	c.expect("DATA", "354")
	c.send(dotTerminated(simpleMessage))
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
}

func TestBDAT(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@example.com>", "250")
	c.expect("RCPT TO:<b@example.com>", "250")
	half := len(simpleMessage) / 2
	c.send("BDAT " + strconv.Itoa(half) + "\r\n" + simpleMessage[:half])
	assert.True(t, strings.HasPrefix(c.reply(), "250 "))
	c.send("BDAT " + strconv.Itoa(len(simpleMessage)-half) + " LAST\r\n" + simpleMessage[half:])
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
	require.Len(t, records(sink), 1)
	assert.Equal(t, "Disk almost full", records(sink)[0].Body().Map().AsRaw()["subject"])
}

func TestMalformedMessageIsStillRecorded(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	msg := "Subject: broken\r\nContent-Type: multipart/mixed; boundary=xyz\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\npart one, never closed\r\n"
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, msg))
	require.Len(t, records(sink), 1)
	rec := records(sink)[0]
	assert.Equal(t, "broken", rec.Body().Map().AsRaw()["subject"])
	perr, ok := rec.Attributes().Get("email.parse_error")
	require.True(t, ok, "a malformed message carries email.parse_error")
	assert.NotEmpty(t, perr.Str())
}

// SMTP smuggling: only <CRLF>.<CRLF> ends DATA, so a message cannot carry a
// second, hidden message past the receiver.
func TestOnlyCRLFDotCRLFEndsData(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.openData()
	c.send("Subject: first\r\n\r\nbody\n.\nMAIL FROM:<evil@example.com>\r\n" +
		"body2\r.\rRCPT TO:<victim@example.com>\r\nbody3\n.\r\nDATA\r\n" +
		"end\r\n.\r\n")
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
	c.expect("NOOP", "250 2.0.0")
	require.Len(t, records(sink), 1, "exactly one message")
	body := records(sink)[0].Body().Map().AsRaw()["body"].(string)
	assert.Contains(t, body, "MAIL FROM:<evil@example.com>")
	assert.Contains(t, body, "end")
}

func TestConnectionLimits(t *testing.T) {
	t.Run("total", func(t *testing.T) {
		r := startReceiver(t, testConfig(func(c *Config) { c.MaxConnections = 2; c.MaxConnectionsPerClient = 2 }), new(consumertest.LogsSink))
		a, b := dial(t, r.addr()), dial(t, r.addr())
		c := rawDial(t, r.addr())
		assert.Equal(t, "421 4.7.0 Too many connections, try again later", c.reply())
		assert.True(t, c.closed())
		// Others keep being served, and a freed slot is usable again.
		a.expect("NOOP", "250")
		b.expect("QUIT", "221")
		require.True(t, b.closed())
		require.Eventually(t, func() bool {
			d := rawDial(t, r.addr())
			return strings.HasPrefix(d.reply(), "220 ")
		}, 10*time.Second, 50*time.Millisecond)
	})
	t.Run("per client", func(t *testing.T) {
		r := startReceiver(t, testConfig(func(c *Config) {
			c.MaxConnectionsPerClient = 1
			c.TrustedNetworks = nil // loopback is trusted by default
		}), new(consumertest.LogsSink))
		a := dial(t, r.addr())
		c := rawDial(t, r.addr())
		assert.Equal(t, "421 4.7.0 Too many connections, try again later", c.reply())
		a.expect("NOOP", "250")
	})
	t.Run("trusted network exempt", func(t *testing.T) {
		r := startReceiver(t, testConfig(func(c *Config) { c.MaxConnectionsPerClient = 1 }), new(consumertest.LogsSink))
		a := dial(t, r.addr())
		b := dial(t, r.addr()) // loopback is trusted by default
		a.expect("NOOP", "250")
		b.expect("NOOP", "250")
	})
}

func TestLongLineWithoutCRLF(t *testing.T) {
	r := startReceiver(t, testConfig(nil), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.send(strings.Repeat("A", 100<<10))
	assert.Equal(t, "500 5.4.0 Too long line, closing connection", c.reply())
	assert.True(t, c.closed())
}

// A client that trickles a command one byte at a time is closed once the
// timeout has passed without a complete line, while it is still sending.
func TestTricklingClientIsClosed(t *testing.T) {
	r := startReceiver(t, testConfig(func(c *Config) { c.Timeout = 1 }), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	line := "EHLO trickle.example.com with a long tail of bytes"
	stillSending := true
	for i := 0; i < len(line); i++ {
		if _, err := c.conn.Write([]byte{line[i]}); err != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
		if i == len(line)-1 {
			stillSending = false
		}
		if hasData(c) {
			break
		}
	}
	require.True(t, stillSending, "the server let a client trickle a whole line for %v", time.Duration(len(line))*200*time.Millisecond)
	assert.True(t, c.closed())
}

// hasData reports whether the server has sent something.
func hasData(c *rawClient) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.rd.Peek(1)
	return !isTimeout(err)
}

func TestIdleClientGets421(t *testing.T) {
	r := startReceiver(t, testConfig(func(c *Config) { c.Timeout = 1 }), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	assert.Equal(t, "421 4.4.2 Idle timeout, closing connection", c.reply())
	assert.True(t, c.closed())
}

func TestDataTimeoutBoundsTheTransfer(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.Timeout = 5; c.DataTimeout = 1 }), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.openData()
	// Lines keep arriving well within the idle timeout, but the transfer
	// as a whole takes longer than data_timeout.
	for i := 0; i < 30 && !hasData(c); i++ {
		_, _ = c.conn.Write([]byte("line\r\n"))
		time.Sleep(100 * time.Millisecond)
	}
	assert.Equal(t, "421 4.4.2 Message transfer took longer than data_timeout, closing connection", c.reply())
	assertNothingMore(t, c)
	assert.Empty(t, records(sink))
}

// A client that stops between BDAT chunks gets one 421 for its transfer,
// not go-smtp's connection error.
func TestIdleBetweenBDATChunks(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.Timeout = 1 }), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@example.com>", "250")
	c.expect("RCPT TO:<b@example.com>", "250")
	c.send("BDAT 10\r\n0123456789")
	assert.True(t, strings.HasPrefix(c.reply(), "250 "))
	// No further chunk comes.
	assert.Equal(t, "421 4.4.2 Message transfer too slow (below min_data_rate), closing connection", c.reply())
	assertNothingMore(t, c)
	assert.Empty(t, records(sink))
}

// assertNothingMore requires that the server closes without another reply.
func assertNothingMore(t *testing.T, c *rawClient) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.rd.ReadString('\n')
	assert.Empty(t, line, "a second reply")
	assert.False(t, isTimeout(err), "the connection stays open")
}

func TestShutdown(t *testing.T) {
	t.Run("idle session gets 421", func(t *testing.T) {
		cfg := testConfig(nil)
		r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
		c := dial(t, r.addr())
		c.expect("EHLO x", "250")
		require.NoError(t, r.Shutdown(context.Background()))
		assert.Equal(t, "421 4.3.2 Service shutting down, try again later", c.reply())
		assert.True(t, c.closed())
		_, err = net.Dial("tcp", r.addr())
		assert.Error(t, err, "the listener is closed")
	})
	t.Run("message in DATA completes", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		r, err := newReceiver(nopSettings(), testConfig(nil), sink)
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
		c := dial(t, r.addr())
		c.expect("EHLO x", "250")
		c.openData()
		c.send(simpleMessage[:20])
		done := shutdownInBackground(t, r)
		require.Eventually(t, r.conns.isStopping, 5*time.Second, 10*time.Millisecond)
		c.send(dotTerminated(simpleMessage[20:]))
		assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
		assert.Equal(t, "421 4.3.2 Service shutting down, try again later", c.reply(), "then the session ends")
		assert.True(t, c.closed())
		<-done
		assert.Len(t, records(sink), 1)
	})
	t.Run("shutdown before start", func(t *testing.T) {
		r, err := newReceiver(nopSettings(), testConfig(nil), new(consumertest.LogsSink))
		require.NoError(t, err)
		assert.NoError(t, r.Shutdown(context.Background()))
	})
}

func TestDisabledDeviceDoesNotListen(t *testing.T) {
	r := startReceiver(t, testConfig(func(c *Config) { c.Status = false }), new(consumertest.LogsSink))
	assert.Empty(t, r.workers)
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := testConfig(nil)
	cfg.Port = new(ln.Addr().(*net.TCPAddr).Port)
	r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot listen on 127.0.0.1:")
	assert.Contains(t, err.Error(), "another process or socket already uses this port")
	assert.NoError(t, r.Shutdown(context.Background()))
}

// SO_REUSEPORT promises one port for every worker's listener and that the
// kernel hands each connection to exactly one of them; it does not promise
// that a given number of connections reaches every worker, so the test
// counts connections served, not their spread.
func TestReuseStartsWorkersOnOnePort(t *testing.T) {
	const requested = 64
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.Reuse = true; c.Workers = requested }), sink)
	require.Len(t, r.workers, min(requested, runtime.NumCPU()), "workers are capped at the CPU count")
	port := r.workers[0].ln.Addr().(*net.TCPAddr).Port
	for _, w := range r.workers {
		assert.Equal(t, port, w.ln.Addr().(*net.TCPAddr).Port)
	}
	const conns = 40
	for range conns {
		c := dial(t, r.addr())
		c.expect("EHLO x", "250")
		assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
		c.expect("QUIT", "221")
	}
	assert.Len(t, records(sink), conns)
	var served int64
	for _, w := range r.workers {
		served += w.stats.sessionsOpened.Load()
	}
	assert.EqualValues(t, conns, served, "every connection is served by exactly one worker")
}

// blockingConsumer holds every message until its context ends, like an
// exporter retrying against a dead backend without a queue.
type blockingConsumer struct {
	consumertest.LogsSink
	entered chan struct{}
}

func (b *blockingConsumer) ConsumeLogs(ctx context.Context, _ plog.Logs) error {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestPipelineTimeout(t *testing.T) {
	r := startReceiver(t, testConfig(func(c *Config) { c.PipelineTimeout = 1 }), &blockingConsumer{entered: make(chan struct{}, 1)})
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	got := c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage)
	assert.Equal(t, "451 4.3.0 Temporary failure in the processing pipeline, try again later", got)
	c.expect("NOOP", "250")
}

// A pipeline call that never returns must not stop the collector from
// shutting down: after the grace period it is cancelled and the client
// hears 421, never 250.
func TestShutdownCancelsBlockedPipeline(t *testing.T) {
	next := &blockingConsumer{entered: make(chan struct{}, 1)}
	r, err := newReceiver(nopSettings(), testConfig(nil), next)
	require.NoError(t, err)
	r.shutdownGrace = 200 * time.Millisecond
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.openData()
	c.send(dotTerminated(simpleMessage))
	<-next.entered
	require.NoError(t, r.Shutdown(context.Background()), "the collector's shutdown context has no deadline")
	assert.Equal(t, "421 4.3.2 Service shutting down, try again later", c.reply())
	assert.True(t, c.closed())
}

func TestRepeatedEHLOUpdatesTheHeloName(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO first.example.com", "250")
	c.expect("EHLO second.example.com", "250")
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	require.Len(t, records(sink), 1)
	helo, _ := records(sink)[0].Attributes().Get("smtp.helo")
	assert.Equal(t, "second.example.com", helo.Str())
}
