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
	r, err := newReceiver(nopSettings(), testConfig(nil), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background(), nopHost()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()

	conn, err := net.Dial("tcp", r.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	expect := func(prefix string) {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) >= 4 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, prefix) {
				b.Fatalf("got %q, want %s", line, prefix)
			}
			return
		}
	}
	send := func(s string) {
		if _, err := conn.Write([]byte(s)); err != nil {
			b.Fatal(err)
		}
	}
	expect("220")
	send("EHLO bench\r\n")
	expect("250")

	body := "From: bench@example.com\r\nTo: sink@example.com\r\nSubject: load\r\n\r\n" +
		strings.Repeat(strings.Repeat("x", 78)+"\r\n", 4096/80)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		send("MAIL FROM:<bench@example.com>\r\n")
		expect("250")
		send("RCPT TO:<sink@example.com>\r\n")
		expect("250")
		send("DATA\r\n")
		expect("354")
		send(body + ".\r\n")
		expect("250")
	}
}
