package smtpreceiver

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
)

// BenchmarkSession measures one message through a live receiver over
// loopback, the way smtp-source drives it: MAIL, RCPT, DATA with a 4 KiB
// body, on a connection that stays open. It covers go-smtp, the session,
// the conversion and ConsumeLogs (a no-op consumer), not the exporters.
func BenchmarkSession(b *testing.B) {
	r := startBenchReceiver(b, testConfig(nil))
	c := dialBench(b, r.addr())
	body := benchMessage
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.transaction("bench@example.com", body)
	}
}

// benchMessage is a 4 KiB message.
var benchMessage = "From: bench@example.com\r\nTo: sink@example.com\r\nSubject: load\r\n\r\n" +
	strings.Repeat(strings.Repeat("x", 78)+"\r\n", 4096/80)

func startBenchReceiver(b *testing.B, cfg *Config) *smtpReceiver {
	b.Helper()
	r, err := newReceiver(nopSettings(), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background(), nopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r
}

// benchClient is one SMTP connection past EHLO.
type benchClient struct {
	b    *testing.B
	conn net.Conn
	rd   *bufio.Reader
}

func dialBench(b *testing.B, addr string) *benchClient {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchClient{b: b, conn: conn, rd: bufio.NewReader(conn)}
	c.expect("220")
	c.send("EHLO bench\r\n")
	c.expect("250")
	return c
}

func (c *benchClient) expect(prefix string) {
	for {
		line, err := c.rd.ReadString('\n')
		if err != nil {
			c.b.Error(err)
			return
		}
		if len(line) >= 4 && line[3] == '-' {
			continue
		}
		if !strings.HasPrefix(line, prefix) {
			c.b.Errorf("got %q, want %s", line, prefix)
		}
		return
	}
}

func (c *benchClient) send(s string) {
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.b.Error(err)
	}
}

// transaction sends one message and waits for its 250.
func (c *benchClient) transaction(from, msg string) {
	c.send("MAIL FROM:<" + from + ">\r\n")
	c.expect("250")
	c.send("RCPT TO:<sink@example.com>\r\n")
	c.expect("250")
	c.send("DATA\r\n")
	c.expect("354")
	c.send(msg + ".\r\n")
	c.expect("250")
}
