package smtpreceiver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/smtpreceiver/smtpreceiver/internal/mailconv"
	"github.com/smtpreceiver/smtpreceiver/internal/senderauth/dnstest"
	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadatatest"
)

// authZone publishes, on a loopback DNS server, SPF for example.org that
// allows 127.0.0.1, an ed25519 DKIM key and a p=reject DMARC record.
func authZone(t *testing.T) (*dnstest.Server, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	srv := dnstest.Start(t, dnstest.Zone{TXT: map[string][]string{
		"example.org":                  {"v=spf1 ip4:127.0.0.0/8 -all"},
		"sel._domainkey.example.org":   {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)},
		"_dmarc.example.org":           {"v=DMARC1; p=reject"},
		"relay.example.net":            {"v=spf1 -all"},
		"_dmarc.example.net":           {"v=DMARC1; p=quarantine"},
		"mx.example.org":               {"v=spf1 a -all"},
		"unrelated.example.com":        {"hello"},
		"sel._domainkey.example.net":   {"v=DKIM1; p="},
		"other._domainkey.example.org": {"v=DKIM1; p="},
	}})
	return srv, key
}

// senderAuthConfig turns sender_auth on against srv, with loopback not
// trusted so that the test client is checked.
func senderAuthConfig(srv *dnstest.Server, mod func(*Config)) *Config {
	return testConfig(func(c *Config) {
		c.TrustedNetworks = nil
		c.Domain = "mx.example.com"
		c.SenderAuth.Enabled = true
		c.SenderAuth.DNS.Server = srv.Addr
		if mod != nil {
			mod(c)
		}
	})
}

func signMessage(t *testing.T, msg string, key ed25519.PrivateKey) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{Domain: "example.org", Selector: "sel", Signer: key}))
	return out.String()
}

const authMessage = "From: Alice <alice@example.org>\r\n" +
	"To: bob@example.com\r\n" +
	"Subject: UPS on battery\r\n" +
	"Message-ID: <ups-1@example.org>\r\n" +
	"\r\n" +
	"Input power lost at 10:00.\r\n"

func TestSenderAuthSignedAndUnsigned(t *testing.T) {
	srv, key := authZone(t)
	sink := new(consumertest.LogsSink)
	r, tel, _ := observedReceiver(t, senderAuthConfig(srv, nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO mx.example.org", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("alice@example.org", []string{"bob@example.com"}, signMessage(t, authMessage, key)))
	// A spoof: From claims example.org, nothing is signed, the envelope
	// sender's SPF fails.
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("x@relay.example.net", []string{"bob@example.com"}, authMessage))
	// The first message again: SPF and DMARC come from the result caches,
	// the DKIM key from the DNS cache.
	queries := srv.Queries()
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("alice@example.org", []string{"bob@example.com"}, signMessage(t, authMessage, key)))
	c.expect("QUIT", "221")
	assert.Equal(t, queries, srv.Queries(), "a repeated message asked the DNS server again")

	recs := records(sink)
	require.Len(t, recs, 3)
	authAttrs := func(i int) map[string]any {
		return pick(recs[i].Attributes().AsRaw(), "email.auth.", "email.spf.", "email.dkim.", "email.dmarc.")
	}
	assert.Equal(t, authAttrs(0), authAttrs(2), "cached results differ from the first ones")
	assert.Equal(t, recs[0].Body().Map().AsRaw()["auth"], recs[2].Body().Map().AsRaw()["auth"], "cached results differ from the first ones")
	signed := recs[0].Attributes().AsRaw()
	assert.Equal(t, map[string]any{
		"email.auth.source": "verified", "email.spf.result": "pass", "email.spf.domain": "example.org", "email.spf.scope": "mfrom",
		"email.dkim.result": "pass", "email.dkim.domains": []any{"example.org"},
		"email.dmarc.result": "pass", "email.dmarc.policy": "reject", "email.dmarc.from_domain": "example.org",
	}, pick(signed, "email.auth.", "email.spf.", "email.dkim.", "email.dmarc."))
	auth := recs[0].Body().Map().AsRaw()["auth"].(map[string]any)
	assert.Contains(t, auth["authentication_results"], "mx.example.com; spf=pass")
	sig := auth["dkim"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
	assert.Equal(t, "sel", sig["selector"])
	assert.Equal(t, "ed25519-sha256", sig["algorithm"])

	spoof := recs[1].Attributes().AsRaw()
	assert.Equal(t, "fail", spoof["email.spf.result"])
	assert.Equal(t, "none", spoof["email.dkim.result"])
	assert.Equal(t, "fail", spoof["email.dmarc.result"])
	assert.Equal(t, "reject", spoof["email.dmarc.policy"])
	assert.NotContains(t, spoof, "email.dkim.domains")

	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	result := func(method, res string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(receiverAttr(r), attribute.String("method", method), attribute.String("result", res)), Value: n}
	}
	metadatatest.AssertEqualSMTPSenderAuthResults(t, tel, []metricdata.DataPoint[int64]{
		result("spf", "pass", 2), result("spf", "fail", 1), result("dkim", "pass", 2), result("dkim", "none", 1),
		result("dmarc", "pass", 2), result("dmarc", "fail", 1),
	}, ignore...)
	// Reused: the DMARC discovery of example.org by the second and third
	// message, the SPF result by the third.
	hits := func(method string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(receiverAttr(r), attribute.String("method", method)), Value: n}
	}
	metadatatest.AssertEqualSMTPSenderAuthResultCacheHits(t, tel, []metricdata.DataPoint[int64]{hits("spf", 1), hits("dmarc", 2)}, ignore...)
	m, err := tel.GetMetric("otelcol_smtp_sender_auth_cache_hits")
	require.NoError(t, err)
	assert.NotEmpty(t, m.Data.(metricdata.Sum[int64]).DataPoints, "the DKIM key of the third message came from the DNS cache")
	_, err = tel.GetMetric("otelcol_smtp_sender_auth_dns_queries")
	require.NoError(t, err)
	_, err = tel.GetMetric("otelcol_smtp_sender_auth_duration")
	require.NoError(t, err)
}

// pick keeps the attributes under the given prefixes.
func pick(attrs map[string]any, prefixes ...string) map[string]any {
	out := map[string]any{}
	for k, v := range attrs {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

// TestSenderAuthNullSenderAndBDAT: the HELO identity is checked for the
// null sender, and DKIM verifies a message sent in BDAT chunks.
func TestSenderAuthNullSenderAndBDAT(t *testing.T) {
	srv, key := authZone(t)
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, senderAuthConfig(srv, nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO relay.example.net", "250")
	c.expect("MAIL FROM:<>", "250")
	c.expect("RCPT TO:<b@example.com>", "250")
	msg := signMessage(t, authMessage, key)
	half := len(msg) / 2
	c.send("BDAT " + strconv.Itoa(half) + "\r\n" + msg[:half])
	require.True(t, strings.HasPrefix(c.reply(), "250 "))
	c.send("BDAT " + strconv.Itoa(len(msg)-half) + " LAST\r\n" + msg[half:])
	require.Equal(t, "250 2.0.0 OK: queued", c.reply())

	attrs := records(sink)[0].Attributes().AsRaw()
	assert.Equal(t, "helo", attrs["email.spf.scope"])
	assert.Equal(t, "relay.example.net", attrs["email.spf.domain"])
	assert.Equal(t, "fail", attrs["email.spf.result"])
	assert.Equal(t, "pass", attrs["email.dkim.result"])
	assert.Equal(t, "pass", attrs["email.dmarc.result"], "aligned DKIM passes DMARC alone")
}

func TestSenderAuthTrustAndSkips(t *testing.T) {
	srv, _ := authZone(t)
	forged := "Authentication-Results: relay.example.org; spf=pass smtp.mailfrom=example.org;\r\n" +
		" dkim=pass (2048-bit key; secure) header.d=example.org; DMARC=Pass header.from=example.org\r\n" + authMessage
	tests := []struct {
		name   string
		mod    func(*Config)
		source string // "" when nothing is recorded
		dmarc  string
	}{
		{"untrusted client: forged upstream results change nothing", func(c *Config) {
			c.TrustedNetworks = []string{"192.0.2.0/24"}
			c.SenderAuth.TrustUpstream = []string{"relay.example.org"}
		}, "verified", "fail"},
		{"trusted client without trust_upstream is skipped", func(c *Config) { c.TrustedNetworks = []string{"127.0.0.0/8"} }, "", ""},
		{"trusted client with a listed authserv-id: upstream", func(c *Config) {
			c.TrustedNetworks = []string{"127.0.0.0/8"}
			c.SenderAuth.TrustUpstream = []string{"relay.example.org"}
		}, "upstream", "pass"},
		{"trusted client, other authserv-id listed, not skipped: verified", func(c *Config) {
			c.TrustedNetworks = []string{"127.0.0.0/8"}
			c.SenderAuth.TrustUpstream = []string{"other.example.org"}
			c.SenderAuth.SkipTrustedNetworks = false
		}, "verified", "fail"},
		{"disabled: nothing", func(c *Config) { c.SenderAuth.Enabled = false }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := startReceiver(t, senderAuthConfig(srv, tt.mod), sink)
			c := dial(t, r.addr())
			c.expect("EHLO relay.example.net", "250")
			require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("x@relay.example.net", []string{"b@example.com"}, forged))
			attrs := records(sink)[0].Attributes().AsRaw()
			if tt.source == "" {
				assert.Empty(t, pick(attrs, "email.auth.", "email.spf.", "email.dkim.", "email.dmarc."))
				assert.NotContains(t, records(sink)[0].Body().Map().AsRaw(), "auth")
				return
			}
			assert.Equal(t, tt.source, attrs["email.auth.source"])
			assert.Equal(t, tt.dmarc, attrs["email.dmarc.result"])
		})
	}
}

func TestSenderAuthSkipsAuthenticatedSubmissions(t *testing.T) {
	srv, _ := authZone(t)
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, senderAuthConfig(srv, func(c *Config) { c.Username = "device"; c.Password = "secret" }), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00device\x00secret")), "235")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("alice@example.org", []string{"b@example.com"}, authMessage))
	assert.NotContains(t, records(sink)[0].Attributes().AsRaw(), "email.spf.result")
}

func TestSenderAuthInJSONBody(t *testing.T) {
	srv, key := authZone(t)
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, senderAuthConfig(srv, func(c *Config) { c.BodyFormat = mailconv.BodyFormatJSON }), sink)
	c := dial(t, r.addr())
	c.expect("EHLO mx.example.org", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("alice@example.org", []string{"b@example.com"}, signMessage(t, authMessage, key)))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(records(sink)[0].Body().Str()), &body))
	auth := body["auth"].(map[string]any)
	assert.Equal(t, "pass", auth["dmarc"].(map[string]any)["result"])
}

func TestSenderAuthConfigUnmarshal(t *testing.T) {
	cm := confmap.NewFromStringMap(map[string]any{"port": 2525, "sender_auth": map[string]any{
		"enabled": true, "checks": []any{"spf", "dmarc"}, "timeout": 3, "max_dkim_signatures": 2,
		"dmarc_discovery": "psl", "skip_trusted_networks": false, "skip_authenticated": false,
		"authserv_id": "mx.example.com", "trust_upstream": []any{"relay.example.com"},
		"dns": map[string]any{"server": "127.0.0.1:5353", "timeout": 1, "cache_entries": 0},
	}})
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cm.Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	sa := cfg.SenderAuth
	assert.True(t, sa.Enabled)
	assert.Equal(t, []string{"spf", "dmarc"}, sa.Checks)
	assert.Equal(t, 3, sa.Timeout)
	assert.Equal(t, 2, sa.MaxDKIMSignatures)
	assert.Equal(t, "psl", sa.DMARCDiscovery)
	assert.False(t, sa.SkipTrustedNetworks)
	assert.False(t, sa.SkipAuthenticated)
	assert.Equal(t, "mx.example.com", sa.AuthservID)
	assert.Equal(t, []string{"relay.example.com"}, sa.TrustUpstream)
	assert.Equal(t, "127.0.0.1:5353", sa.DNS.Server)
	assert.Equal(t, 1, sa.DNS.Timeout)
	assert.Equal(t, 0, sa.DNS.CacheEntries)

	d := createDefaultConfig().(*Config).SenderAuth
	assert.False(t, d.Enabled, "off by default: no DNS traffic unless asked")
	assert.Equal(t, []string{"spf", "dkim", "dmarc"}, d.Checks)
	assert.Equal(t, 5, d.Timeout)
	assert.Equal(t, 5, d.MaxDKIMSignatures)
	assert.Equal(t, "treewalk", d.DMARCDiscovery)
	assert.True(t, d.SkipTrustedNetworks)
	assert.True(t, d.SkipAuthenticated)
	assert.Equal(t, 2, d.DNS.Timeout)
	assert.Equal(t, 10000, d.DNS.CacheEntries)
}

func TestSenderAuthConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*SenderAuthConfig)
		want string
	}{
		{"unknown check", func(c *SenderAuthConfig) { c.Checks = []string{"spf", "dkmi"} }, `sender_auth.checks[1]: "dkmi" is not a check`},
		{"repeated check", func(c *SenderAuthConfig) { c.Checks = []string{"spf", "spf"} }, "sender_auth.checks[1]: \"spf\" is listed twice"},
		{"no checks", func(c *SenderAuthConfig) { c.Checks = nil }, "sender_auth.checks: must list at least one check"},
		{"dmarc alone", func(c *SenderAuthConfig) { c.Checks = []string{"dmarc"} }, "sender_auth.checks: dmarc needs spf or dkim"},
		{"timeout", func(c *SenderAuthConfig) { c.Timeout = 0 }, "sender_auth.timeout: must be greater than 0"},
		{"max signatures", func(c *SenderAuthConfig) { c.MaxDKIMSignatures = 0 }, "sender_auth.max_dkim_signatures: must be between 1 and 50"},
		{"discovery", func(c *SenderAuthConfig) { c.DMARCDiscovery = "walk" }, `sender_auth.dmarc_discovery: must be "treewalk" (RFC 9989) or "psl"`},
		{"empty authserv-id", func(c *SenderAuthConfig) { c.TrustUpstream = []string{""} }, "sender_auth.trust_upstream[0]: is empty"},
		{"server without port", func(c *SenderAuthConfig) { c.DNS.Server = "127.0.0.1" }, "sender_auth.dns.server: must be host:port"},
		{"server bad port", func(c *SenderAuthConfig) { c.DNS.Server = "127.0.0.1:99999" }, "sender_auth.dns.server: port must be between 1 and 65535"},
		{"dns timeout", func(c *SenderAuthConfig) { c.DNS.Timeout = -1 }, "sender_auth.dns.timeout: must be greater than 0"},
		{"cache entries", func(c *SenderAuthConfig) { c.DNS.CacheEntries = -1 }, "sender_auth.dns.cache_entries: must be 0 (no cache) or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(func(c *Config) { c.SenderAuth.Enabled = true; tt.mod(&c.SenderAuth) })
			err := cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	noTrusted := testConfig(func(c *Config) { c.TrustedNetworks = nil; c.SenderAuth.TrustUpstream = []string{"relay.example.com"} })
	assert.ErrorContains(t, noTrusted.Validate(), "sender_auth.trust_upstream: has no effect without trusted_networks")
}

// TestSenderAuthTimeoutIsTemperror: with a resolver that never answers,
// the message is still accepted once sender_auth.timeout has passed, with
// temperror results.
func TestSenderAuthTimeoutIsTemperror(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) {
		c.TrustedNetworks = nil
		c.SenderAuth.Enabled = true
		c.SenderAuth.Timeout = 1
		c.SenderAuth.DNS.Timeout = 30
		c.SenderAuth.DNS.Server = silent.LocalAddr().String()
	}), sink)
	c := dial(t, r.addr())
	c.expect("EHLO mx.example.org", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("alice@example.org", []string{"b@example.com"}, authMessage))
	attrs := records(sink)[0].Attributes().AsRaw()
	assert.Equal(t, "temperror", attrs["email.spf.result"])
	assert.Equal(t, "none", attrs["email.dkim.result"], "an unsigned message needs no lookup")
	assert.Equal(t, "temperror", attrs["email.dmarc.result"])
}

func TestSenderAuthBadSystemResolverFailsStart(t *testing.T) {
	cfg := testConfig(func(c *Config) { c.SenderAuth.Enabled = true })
	r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
	require.NoError(t, err)
	if _, statErr := os.Stat("/etc/resolv.conf"); statErr == nil {
		t.Skip("this machine has a system resolver configuration")
	}
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "sender_auth.dns.server")
}

// TestSenderAuthBehindProxy: behind a PROXY protocol balancer, SPF judges
// the client the header names, not the balancer's socket address.
func TestSenderAuthBehindProxy(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{TXT: map[string][]string{
		"example.org": {"v=spf1 ip4:203.0.113.7 -all"}, // the real client, not 127.0.0.1
	}})
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, senderAuthConfig(srv, behindProxy("127.0.0.1/32")), sink)
	c := rawDial(t, r.addr())
	c.send("PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n")
	require.True(t, strings.HasPrefix(c.reply(), "220 "))
	c.expect("EHLO mx.example.org", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("alice@example.org", []string{"b@example.com"}, authMessage))
	assert.Equal(t, "pass", records(sink)[0].Attributes().AsRaw()["email.spf.result"])
}

func TestSenderAuthLimitCounted(t *testing.T) {
	srv, key := authZone(t)
	sink := new(consumertest.LogsSink)
	r, tel, _ := observedReceiver(t, senderAuthConfig(srv, func(c *Config) { c.SenderAuth.MaxDKIMSignatures = 1 }), sink)
	c := dial(t, r.addr())
	c.expect("EHLO mx.example.org", "250")
	twice := signMessage(t, signMessage(t, authMessage, key), key)
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("alice@example.org", []string{"b@example.com"}, twice))
	auth := records(sink)[0].Body().Map().AsRaw()["auth"].(map[string]any)
	assert.Equal(t, int64(1), auth["dkim"].(map[string]any)["signatures_not_verified"])
	metadatatest.AssertEqualSMTPSenderAuthLimited(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(receiverAttr(r), attribute.String("limit", "max_dkim_signatures")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
}

func receiverAttr(r *smtpReceiver) attribute.KeyValue {
	return attribute.String("receiver", r.set.ID.String())
}
