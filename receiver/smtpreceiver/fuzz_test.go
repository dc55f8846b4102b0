package smtpreceiver

import (
	"bufio"
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// replyLine is the shape of every line an SMTP server may send.
var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession throws arbitrary client bytes at a live receiver over a real
// socket. Whatever arrives, every line the server sends must be a
// well-formed reply, no internal error text may leak, and the server must
// go on accepting new sessions.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" + simpleMessage + ".\r\nQUIT\r\n",
		"HELO x\r\nMAIL FROM:<a@example.com> SIZE=99999999999\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n",
		"EHLO x\r\nAUTH PLAIN AGFAYg==\r\nAUTH LOGIN\r\n*\r\nSTARTTLS\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nRCPT TO: <Postmaster> X=1\r\nDATA\r\nx\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\n\nbody\n.\n\r\n.\r\n",
		"\x00\xff\r\nEHLO \x00\r\nMAIL FROM:<\x00>\r\nRCPT TO:<>\r\nBDAT 99999999999\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n.\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	cfg := testConfig(func(c *Config) { c.Timeout = 1; c.DataTimeout = 2; c.MaxMessageBytes = 64 << 10 })
	r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	addr := r.addr()

	f.Fuzz(func(t *testing.T, input []byte) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			_, _ = conn.Write(input)
			_, _ = conn.Write([]byte("\r\n.\r\nQUIT\r\n"))
		}()
		rd := bufio.NewReader(conn)
		for {
			line, err := rd.ReadString('\n')
			if line != "" {
				if !replyLine.MatchString(line) {
					t.Fatalf("malformed reply line %q", line)
				}
				if strings.Contains(line, "Error: transaction failed") {
					t.Fatalf("internal error text reached the client: %q", line)
				}
			}
			if err == io.EOF || isTimeout(err) {
				break
			}
			if err != nil {
				break // reset by peer after a protocol error
			}
		}
		// The server is still there for the next client.
		next, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("server gone after input %q: %v", input, err)
		}
		defer next.Close()
		_ = next.SetDeadline(time.Now().Add(5 * time.Second))
		greeting, err := bufio.NewReader(next).ReadString('\n')
		if err != nil || !strings.HasPrefix(greeting, "220 ") {
			t.Fatalf("no greeting after input %q: %q %v", input, greeting, err)
		}
	})
}
