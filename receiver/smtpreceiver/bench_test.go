package smtpreceiver

import (
	"bufio"
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
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
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
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

// BenchmarkIdleConnections opens idleConns connections that each read the
// greeting, say EHLO, read the reply and then sit idle, as the load
// harness's idle test does, and reports what the process holds per
// connection: Go heap in use after a GC, goroutine stacks, and RSS. Client
// and server share the process; the client side is a bare net.Conn (no
// buffers, no goroutine), a few hundred bytes of the heap figure. It
// reports and asserts nothing: memory depends on the Go runtime. Only the
// first round is reported: later rounds reuse the memory the first one
// freed, and their RSS grows by next to nothing.
func BenchmarkIdleConnections(b *testing.B) {
	const idleConns = 1000
	cfg := testConfig(func(c *Config) {
		c.MaxConnections, c.MaxConnectionsPerClient, c.Timeout = 2*idleConns, 2*idleConns, 300
	})
	r := startBenchReceiver(b, cfg)

	first := true
	for b.Loop() {
		before := memoryInUse()
		conns := make([]net.Conn, 0, idleConns)
		for range idleConns {
			c, err := net.Dial("tcp", r.addr())
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			if err := sayEHLO(c); err != nil {
				b.Fatal(err)
			}
		}
		after := memoryInUse()
		if first {
			first = false
			b.ReportMetric(float64(after.heap-before.heap)/idleConns, "heap-B/conn")
			b.ReportMetric(float64(after.stack-before.stack)/idleConns, "stack-B/conn")
			b.ReportMetric(float64(after.rss-before.rss)/idleConns, "rss-B/conn")
		}
		for _, c := range conns {
			_ = c.Close()
		}
	}
}

// sayEHLO reads the greeting, sends EHLO and reads the whole reply, with a
// buffer on the stack.
func sayEHLO(c net.Conn) error {
	var buf [512]byte
	readReply := func() error {
		got := ""
		for !strings.Contains(got, "\n250 ") && !strings.HasPrefix(got, "220 ") {
			n, err := c.Read(buf[:])
			if err != nil {
				return err
			}
			got += string(buf[:n])
		}
		return nil
	}
	if err := readReply(); err != nil {
		return err
	}
	if _, err := c.Write([]byte("EHLO idle.example.com\r\n")); err != nil {
		return err
	}
	var buf2 [512]byte
	got := ""
	for !strings.Contains(got, "250 ") {
		n, err := c.Read(buf2[:])
		if err != nil {
			return err
		}
		got += string(buf2[:n])
	}
	return nil
}

type memoryUse struct{ heap, stack, rss int64 }

// memoryInUse settles the heap and reads it, the stacks and the RSS.
func memoryInUse() memoryUse {
	time.Sleep(100 * time.Millisecond) // let the sessions reach their idle read
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memoryUse{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse), rss: residentBytes()}
}

// residentBytes is the process's RSS from /proc/self/statm, 0 where there
// is none.
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
