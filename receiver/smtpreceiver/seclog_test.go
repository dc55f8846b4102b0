package smtpreceiver

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// securityEvents are the warn-level entries of one event kind.
func securityEvents(logs *observer.ObservedLogs, event string) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, e := range logs.FilterLevelExact(zapcore.WarnLevel).All() {
		if e.ContextMap()["event"] == event {
			out = append(out, e)
		}
	}
	return out
}

// waitEvents waits (bounded) for n entries of event.
func waitEvents(t *testing.T, logs *observer.ObservedLogs, event string, n int) []observer.LoggedEntry {
	t.Helper()
	require.Eventually(t, func() bool { return len(securityEvents(logs, event)) >= n }, 10*time.Second, 20*time.Millisecond,
		"%d %s events expected", n, event)
	return securityEvents(logs, event)
}

// noSecretLogged fails if any logged text or field holds secret.
func noSecretLogged(t *testing.T, logs *observer.ObservedLogs, secret string) {
	t.Helper()
	for _, e := range logs.All() {
		assert.NotContains(t, e.Message, secret)
		for k, v := range e.ContextMap() {
			assert.NotContains(t, fmt.Sprint(k, "=", v), secret)
		}
	}
}

// Issue 10.8: a wrong password is logged at warn level with the client
// address, mechanism and reason, never the password; throttling of the
// client is logged too.
func TestFailedAuthIsLogged(t *testing.T) {
	const secret = "not-the-password-4711"
	r, _, logs := observedReceiver(t, testConfig(func(c *Config) {
		c.Username, c.Password = "mailuser", "secret"
		c.TrustedNetworks = nil // throttling applies to loopback too
	}), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", secret), "535 5.7.8")

	e := waitEvents(t, logs, eventAuthFailed, 1)[0]
	fields := e.ContextMap()
	assert.Equal(t, "SMTP AUTH failed", e.Message)
	assert.Equal(t, "127.0.0.1", fields["client.address"])
	assert.Equal(t, "PLAIN", fields["mechanism"])
	assert.Equal(t, "invalid user name or password", fields["reason"])
	th := waitEvents(t, logs, eventThrottled, 1)[0]
	assert.Equal(t, "127.0.0.1", th.ContextMap()["client.address"])
	noSecretLogged(t, logs, secret)
	noSecretLogged(t, logs, b64(secret))
}

// Connection-limit refusals are logged with the client and the limit.
func TestConnectionRefusalIsLogged(t *testing.T) {
	r, _, logs := observedReceiver(t, testConfig(func(c *Config) { c.MaxConnections = 1; c.MaxConnectionsPerClient = 1 }), new(consumertest.LogsSink))
	dial(t, r.addr())
	c := rawDial(t, r.addr())
	assert.True(t, strings.HasPrefix(c.reply(), "421 4.7.0"))
	e := waitEvents(t, logs, eventConnRefused, 1)[0]
	assert.Equal(t, "127.0.0.1", e.ContextMap()["client.address"])
	assert.Equal(t, "max_connections", e.ContextMap()["reason"])
}

// A failed TLS handshake is logged with the client and a reason.
func TestFailedTLSHandshakeIsLogged(t *testing.T) {
	cfg, clientTLS := secureConfig(t, nil)
	r, _, logs := observedReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	clientTLS.MinVersion, clientTLS.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	require.Error(t, c.startTLS(clientTLS))
	c.conn.Close()
	e := waitEvents(t, logs, eventTLSFailed, 1)[0]
	assert.Equal(t, "TLS handshake failed", e.Message)
	assert.Equal(t, "127.0.0.1", e.ContextMap()["client.address"])
	assert.NotEmpty(t, e.ContextMap()["reason"])
}

// A certificate reload that reads a broken key makes handshakes fail; the
// log says why.
func TestBrokenCertificateReloadIsLogged(t *testing.T) {
	cfg, clientTLS := secureConfig(t, func(c *Config) { c.TLS.ReloadInterval = 1 })
	r, _, logs := observedReceiver(t, cfg, new(consumertest.LogsSink))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.ServiceRoot, "smtp.key"), []byte("-----BEGIN EC PRIVATE KEY-----\nbroken\n-----END EC PRIVATE KEY-----\n"), 0o600))
	require.Eventually(t, func() bool {
		c := dial(t, r.addr())
		c.expect("EHLO x", "250")
		err := c.startTLS(clientTLS)
		c.conn.Close()
		return err != nil && len(securityEvents(logs, eventCertUnavailable)) > 0
	}, 10*time.Second, 300*time.Millisecond)
	e := securityEvents(logs, eventCertUnavailable)[0]
	assert.Equal(t, "127.0.0.1", e.ContextMap()["client.address"])
	assert.NotEmpty(t, e.ContextMap()["reason"])
	tlsFailed := waitEvents(t, logs, eventTLSFailed, 1)[0]
	assert.Contains(t, tlsFailed.ContextMap()["reason"], "certificate unavailable")
}

// A flood from one client logs the first events of each window, then the
// number left out with the next event after the window.
func TestSecurityLogIsSampledPerClient(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	l := newSecurityLog(zap.New(core))
	// The windows follow a clock of the test's, so the sampling does not
	// depend on how fast the events are logged.
	clock := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	for range 20 {
		l.warn(a, eventAuthFailed, "SMTP AUTH failed")
	}
	l.warn(b, eventAuthFailed, "SMTP AUTH failed")
	assert.Len(t, securityEvents(logs, eventAuthFailed), securityLogBurst+1, "the burst of a, and b")

	clock = clock.Add(securityLogWindow)
	l.warn(a, eventAuthFailed, "SMTP AUTH failed")
	all := securityEvents(logs, eventAuthFailed)
	last := all[len(all)-1].ContextMap()
	assert.Equal(t, "192.0.2.1", last["client.address"])
	assert.EqualValues(t, 20-securityLogBurst, last["suppressed_in_previous_window"])
}
