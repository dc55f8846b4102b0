package smtpreceiver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"golang.org/x/crypto/bcrypt"
)

// secureConfig is the spec's "Secure" example on a free port, with the
// certificate and key in a fresh service root.
func secureConfig(t *testing.T, mod func(*Config)) (*Config, *tls.Config) {
	t.Helper()
	root := t.TempDir()
	pool := testCert(t, root, "smtp.crt", "smtp.key")
	cfg := testConfig(func(c *Config) {
		c.Username, c.Password = "mailuser", "secret"
		c.TLS.Status, c.TLS.CertName, c.TLS.KeyName = true, "smtp.crt", "smtp.key"
		c.ServiceRoot = root
		if mod != nil {
			mod(c)
		}
	})
	return cfg, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func plainIR(authzid, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + pass))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSTARTTLSAndAuth(t *testing.T) {
	tests := []struct {
		name  string
		login func(c *rawClient)
	}{
		{"PLAIN with initial response", func(c *rawClient) {
			c.expect("AUTH PLAIN "+plainIR("", "mailuser", "secret"), "235 2.0.0 Authentication succeeded")
		}},
		{"PLAIN with authzid equal to the user", func(c *rawClient) {
			c.expect("AUTH PLAIN "+plainIR("mailuser", "mailuser", "secret"), "235 2.0.0")
		}},
		{"PLAIN in two steps", func(c *rawClient) {
			c.expect("AUTH PLAIN", "334 ")
			c.expect(plainIR("", "mailuser", "secret"), "235 2.0.0")
		}},
		{"LOGIN", func(c *rawClient) {
			assert.Equal(t, "334 "+b64("Username:"), c.cmd("AUTH LOGIN"))
			assert.Equal(t, "334 "+b64("Password:"), c.cmd(b64("mailuser")))
			c.expect(b64("secret"), "235 2.0.0")
		}},
		{"LOGIN with initial response", func(c *rawClient) {
			assert.Equal(t, "334 "+b64("Password:"), c.cmd("AUTH LOGIN "+b64("mailuser")))
			c.expect(b64("secret"), "235 2.0.0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, clientTLS := secureConfig(t, nil)
			r := startReceiver(t, cfg, sink)
			c := dial(t, r.addr())
			ehlo := c.expect("EHLO x", "250")
			assert.Contains(t, ehlo, "STARTTLS")
			assert.NotContains(t, ehlo, "AUTH", "AUTH is offered only after STARTTLS")
			require.NoError(t, c.startTLS(clientTLS))
			ehlo = c.expect("EHLO x", "250")
			assert.Contains(t, ehlo, "AUTH PLAIN LOGIN")
			assert.NotContains(t, ehlo, "STARTTLS")
			c.expect("MAIL FROM:<a@example.com>", "530 5.7.0 Authentication required")
			tt.login(c)
			assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))

			require.Len(t, records(sink), 1)
			attrs := records(sink)[0].Attributes().AsRaw()
			assert.Equal(t, "mailuser", attrs["user.name"])
			assert.Contains(t, []any{"1.2", "1.3"}, attrs["tls.protocol.version"])
			assert.NotEmpty(t, attrs["tls.cipher"])
		})
	}
}

func TestMailBeforeSTARTTLS(t *testing.T) {
	cfg, _ := secureConfig(t, nil)
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	ehlo := c.expect("EHLO x", "250")
	assert.Contains(t, ehlo, "\n250-STARTTLS\n", "STARTTLS is offered right after the greeting line")
	assert.NotContains(t, ehlo, "AUTH", "AUTH is offered inside TLS only")
	c.expect("MAIL FROM:<a@example.com>", "530 5.7.0 Must issue a STARTTLS command first")
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", "secret"), "530 5.7.0 Must issue a STARTTLS command first")
}

func TestAuthFailures(t *testing.T) {
	cfg, clientTLS := secureConfig(t, func(c *Config) { c.MaxAuthFailures = 3 })
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	require.NoError(t, c.startTLS(clientTLS))
	c.expect("EHLO x", "250")
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", "wrong"), "535 5.7.8 Authentication failed")
	c.expect("AUTH PLAIN "+plainIR("admin", "mailuser", "secret"), "535 5.7.8")
	got := c.cmd("AUTH PLAIN " + plainIR("", "nobody", "secret"))
	assert.Equal(t, "421 4.7.0 Too many authentication failures, closing connection", got)
	assert.True(t, c.closed())
	for _, secret := range []string{"wrong", "secret"} {
		assert.NotContains(t, got, secret, "credentials never appear in replies")
	}
}

func TestAuthFailuresAreThrottledPerClient(t *testing.T) {
	th := newAuthThrottle(newConnLimiter(testConfig(nil)).isTrusted)
	untrusted := netip.MustParseAddr("192.0.2.1")
	assert.Equal(t, authFailureStep, th.failed(untrusted))
	assert.Equal(t, 2*authFailureStep, th.failed(untrusted))
	for range 10 {
		th.failed(untrusted)
	}
	assert.Equal(t, maxAuthDelay, th.failed(untrusted))
	assert.Equal(t, authFailureStep, th.failed(netip.MustParseAddr("192.0.2.2")), "other clients are not slowed")
	assert.Zero(t, th.failed(netip.MustParseAddr("127.0.0.1")), "trusted networks are exempt")
}

func TestPlaintextAuthWithoutTLS(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.Username, c.Password = "mailuser", "secret" }), sink)
	c := dial(t, r.addr())
	assert.Contains(t, c.expect("EHLO x", "250"), "AUTH PLAIN LOGIN")
	c.expect("MAIL FROM:<a@example.com>", "530 5.7.0 Authentication required")
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", "secret"), "235")
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
}

func TestCredentialsFile(t *testing.T) {
	root := t.TempDir()
	var lines []string
	for _, acct := range [][2]string{{"alice", "wonderland"}, {"printer", "toner"}} {
		hash, err := bcrypt.GenerateFromPassword([]byte(acct[1]), bcrypt.MinCost)
		require.NoError(t, err)
		lines = append(lines, acct[0]+":"+string(hash))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "users.htpasswd"), []byte("# accounts\n"+strings.Join(lines, "\n")+"\n"), 0o600))
	r := startReceiver(t, testConfig(func(c *Config) { c.CredentialsFile = "users.htpasswd"; c.ServiceRoot = root }), new(consumertest.LogsSink))
	for _, tc := range []struct{ user, pass, want string }{
		{"alice", "wonderland", "235"},
		{"printer", "toner", "235"},
		{"alice", "toner", "535"},
		{"mallory", "wonderland", "535"},
	} {
		c := dial(t, r.addr())
		c.expect("EHLO x", "250")
		c.expect("AUTH PLAIN "+plainIR("", tc.user, tc.pass), tc.want)
	}
}

func TestCredentialsFileErrors(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "md5.htpasswd"), []byte("bob:$apr1$abc$def\n"), 0o600))
	for _, tc := range []struct{ file, want string }{
		{"missing.htpasswd", "cannot read"},
		{"md5.htpasswd", "only bcrypt hashes are accepted"},
	} {
		cfg := testConfig(func(c *Config) { c.CredentialsFile = tc.file; c.ServiceRoot = root })
		r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
		require.NoError(t, err)
		err = r.Start(context.Background(), componenttest.NewNopHost())
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), filepath.Join(root, tc.file))
	}
}

func TestImplicitTLS(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, clientTLS := secureConfig(t, func(c *Config) { c.TLS.Implicit = true })
	r := startReceiver(t, cfg, sink)
	conn, err := tls.Dial("tcp", r.addr(), clientTLS)
	require.NoError(t, err)
	c := &rawClient{t: t, conn: conn, rd: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	assert.True(t, strings.HasPrefix(c.reply(), "220 "))
	ehlo := c.expect("EHLO x", "250")
	assert.NotContains(t, ehlo, "STARTTLS")
	assert.Contains(t, ehlo, "AUTH PLAIN LOGIN")
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", "secret"), "235")
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
}

func TestOldTLSVersionsRefused(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		cfg, clientTLS := secureConfig(t, nil)
		r := startReceiver(t, cfg, new(consumertest.LogsSink))
		c := dial(t, r.addr())
		c.expect("EHLO x", "250")
		clientTLS.MinVersion, clientTLS.MaxVersion = v, v
		assert.Error(t, c.startTLS(clientTLS), "TLS version %x must be refused", v)
	}
}

func TestMutualTLS(t *testing.T) {
	cfg, clientTLS := secureConfig(t, nil)
	clientDir := t.TempDir()
	testCert(t, clientDir, "client.crt", "client.key")
	cfg.TLS.ClientCAFile = filepath.Join(clientDir, "client.crt")
	r := startReceiver(t, cfg, new(consumertest.LogsSink))

	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	err := c.startTLS(clientTLS)
	if err == nil { // TLS 1.3 reports the missing certificate on first read
		_, err = c.conn.Write([]byte("EHLO x\r\n"))
		if err == nil {
			_, err = c.rd.ReadString('\n')
		}
	}
	assert.Error(t, err, "a client without certificate is refused")

	cert, err := tls.LoadX509KeyPair(filepath.Join(clientDir, "client.crt"), filepath.Join(clientDir, "client.key"))
	require.NoError(t, err)
	withCert := clientTLS.Clone()
	withCert.Certificates = []tls.Certificate{cert}
	c = dial(t, r.addr())
	c.expect("EHLO x", "250")
	require.NoError(t, c.startTLS(withCert))
	c.expect("EHLO x", "250")
}

// Commands pipelined after STARTTLS in plaintext must never be executed
// inside the TLS session (CVE-2011-0411 style command injection).
func TestSTARTTLSInjectionIgnored(t *testing.T) {
	cfg, clientTLS := secureConfig(t, nil)
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.send("STARTTLS\r\nRSET\r\n")
	assert.Equal(t, "220 2.0.0 Ready to start TLS", c.reply())
	tc := tls.Client(c.conn, clientTLS)
	if err := tc.Handshake(); err != nil {
		return // the injected bytes broke the handshake: not executed either
	}
	c.conn, c.rd = tc, bufio.NewReader(tc)
	got := c.cmd("NOOP")
	assert.Equal(t, "250 2.0.0 OK", got, "the first reply inside TLS must answer NOOP, not the injected RSET")
}

func TestTLSStartErrorsNameThePath(t *testing.T) {
	root := t.TempDir()
	otherDir := t.TempDir()
	testCert(t, root, "smtp.crt", "smtp.key")
	testCert(t, otherDir, "other.crt", "other.key")
	require.NoError(t, os.WriteFile(filepath.Join(root, "garbage.key"), []byte("not a key"), 0o600))
	tests := []struct {
		name, cert, key string
	}{
		{"missing cert", "nope.crt", "smtp.key"},
		{"unreadable key", "smtp.crt", "garbage.key"},
		{"mismatched pair", "smtp.crt", filepath.Join(otherDir, "other.key")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(func(c *Config) {
				c.TLS.Status, c.TLS.CertName, c.TLS.KeyName = true, tt.cert, tt.key
				c.ServiceRoot = root
			})
			r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
			require.NoError(t, err)
			err = r.Start(context.Background(), componenttest.NewNopHost())
			require.Error(t, err)
			assert.Contains(t, err.Error(), filepath.Join(root, "smtp.crt")[:len(root)], "names the resolved path")
			wantCert := tt.cert
			if !filepath.IsAbs(wantCert) {
				wantCert = filepath.Join(root, wantCert)
			}
			assert.Contains(t, err.Error(), wantCert)
		})
	}
}

// With tls.reload_interval a renewed certificate is served without a
// restart.
func TestCertificateReload(t *testing.T) {
	cfg, _ := secureConfig(t, func(c *Config) { c.TLS.ReloadInterval = 1 })
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	serial := func() string {
		c := dial(t, r.addr())
		c.expect("EHLO x", "250")
		require.NoError(t, c.startTLS(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // only the serial is read
		return c.conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	testCert(t, cfg.ServiceRoot, "smtp.crt", "smtp.key") // renewed in place
	require.Eventually(t, func() bool { return serial() != before }, 10*time.Second, 200*time.Millisecond)
}

// A TLS session waiting for its next command hears the shutdown 421 inside
// TLS.
func TestShutdownReachesTLSSessions(t *testing.T) {
	cfg, clientTLS := secureConfig(t, nil)
	r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	require.NoError(t, c.startTLS(clientTLS))
	c.expect("EHLO x", "250")
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Equal(t, "421 4.3.2 Service shutting down, try again later", c.reply())
	assert.True(t, c.closed())
}
