package smtpreceiver

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadata"
)

// testConfig is a receiver on a free loopback port with defaults otherwise.
func testConfig(mod func(*Config)) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Address = "127.0.0.1"
	cfg.Port = new(0)
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

// startReceiver starts a receiver and stops it when the test ends.
func startReceiver(t *testing.T, cfg *Config, next consumer.Logs) *smtpReceiver {
	t.Helper()
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(nopSettings(), cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(ctx))
	})
	return r
}

// shutdownInBackground shuts the receiver down while the test goes on
// talking to it; the channel closes when Shutdown has returned.
func shutdownInBackground(t *testing.T, r *smtpReceiver) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, r.Shutdown(ctx))
	}()
	return done
}

func (r *smtpReceiver) addr() string { return r.workers[0].ln.Addr().String() }

// rawClient speaks SMTP line by line over a real socket, so tests can
// assert the exact replies a client sees.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

// dial connects and reads the greeting.
func dial(t *testing.T, addr string) *rawClient {
	t.Helper()
	c := rawDial(t, addr)
	require.True(t, strings.HasPrefix(c.reply(), "220 "))
	return c
}

// rawDial connects without reading the greeting.
func rawDial(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, rd: bufio.NewReader(conn)}
}

func nopSettings() receiver.Settings { return receivertest.NewNopSettings(metadata.Type) }

// reply reads one reply, joining the lines of a multi-line one with "\n".
func (c *rawClient) reply() string {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	var lines []string
	for {
		line, err := c.rd.ReadString('\n')
		require.NoError(c.t, err, "reading reply after %q", lines)
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	_, err := c.conn.Write([]byte(s))
	require.NoError(c.t, err)
}

// cmd sends one command line and returns the reply.
func (c *rawClient) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

// expect sends a command and requires the reply to start with want.
func (c *rawClient) expect(line, want string) string {
	c.t.Helper()
	got := c.cmd(line)
	require.True(c.t, strings.HasPrefix(got, want), "%s: got %q, want prefix %q", line, got, want)
	return got
}

// closed reports whether the server has closed the connection, reading
// away anything it still sends.
func (c *rawClient) closed() bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.rd.ReadString('\n')
	for err == nil {
		_, err = c.rd.ReadString('\n')
	}
	return !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// startTLS upgrades the client after a 220 to STARTTLS.
func (c *rawClient) startTLS(cfg *tls.Config) error {
	c.t.Helper()
	c.expect("STARTTLS", "220 2.0.0")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.conn = tc
	c.rd = bufio.NewReader(tc)
	return nil
}

// openData starts a transaction from a@example.com to b@example.com, up to
// the 354 that invites the message.
func (c *rawClient) openData() {
	c.t.Helper()
	c.expect("MAIL FROM:<a@example.com>", "250")
	c.expect("RCPT TO:<b@example.com>", "250")
	c.expect("DATA", "354")
}

// sendMail runs one transaction and returns the reply to the message.
func (c *rawClient) sendMail(from string, to []string, msg string) string {
	c.t.Helper()
	c.expect("MAIL FROM:<"+from+">", "250 ")
	for _, rcpt := range to {
		c.expect("RCPT TO:<"+rcpt+">", "250 ")
	}
	c.expect("DATA", "354 ")
	c.send(dotTerminated(msg))
	return c.reply()
}

const simpleMessage = "From: Alice <alice@example.com>\r\n" +
	"To: bob@example.com\r\n" +
	"Subject: Disk almost full\r\n" +
	"Message-ID: <1@example.com>\r\n" +
	"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
	"\r\n" +
	"/dev/sda1 is at 95%.\r\n"

// records flattens the log records a sink received.
func records(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, l := range sink.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			rl := l.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				sl := rl.ScopeLogs().At(j)
				for k := 0; k < sl.LogRecords().Len(); k++ {
					out = append(out, sl.LogRecords().At(k))
				}
			}
		}
	}
	return out
}

// testCert writes a self-signed certificate and key for 127.0.0.1 into dir
// and returns the pool that trusts it. Nothing of value is ever committed.
func testCert(t *testing.T, dir, certName, keyName string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtpreceiver test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// dotTerminated ends a message with the DATA terminator.
func dotTerminated(msg string) string {
	if !strings.HasSuffix(msg, "\r\n") {
		msg += "\r\n"
	}
	return msg + ".\r\n"
}
