package smtpreceiver

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadatatest"
)

// behindProxy is a receiver that trusts PROXY headers from the given
// networks (127.0.0.1 is the test's "balancer").
func behindProxy(trusted ...string) func(*Config) {
	return func(c *Config) {
		c.ProxyProtocol.Enabled = true
		c.ProxyProtocol.TrustedProxies = trusted
		c.ProxyProtocol.Timeout = 2
	}
}

func proxyV2(t *testing.T, src, dst *net.TCPAddr, cmd proxyproto.ProtocolVersionAndCommand) string {
	t.Helper()
	proto := proxyproto.TCPv4
	if src.IP.To4() == nil {
		proto = proxyproto.TCPv6
	}
	h := &proxyproto.Header{Version: 2, Command: cmd, TransportProtocol: proto, SourceAddr: src, DestinationAddr: dst}
	b, err := h.Format()
	require.NoError(t, err)
	return string(b)
}

// noGreetingYet asserts that the server has said nothing for a moment: from
// a trusted proxy it waits for the header before greeting.
func noGreetingYet(t *testing.T, c *rawClient) {
	t.Helper()
	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err := c.rd.ReadByte()
	require.True(t, isTimeout(err), "the server spoke before the PROXY header: %v", err)
}

func TestProxyHeaderNamesTheClient(t *testing.T) {
	dst := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25}
	tests := []struct {
		name     string
		header   func(t *testing.T) string
		wantAddr string
		wantPort int64
	}{
		{"v1 TCP4", func(*testing.T) string { return "PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n" }, "203.0.113.7", 40000},
		{"v1 TCP6", func(*testing.T) string { return "PROXY TCP6 2001:db8::7 2001:db8::1 40001 25\r\n" }, "2001:db8::7", 40001},
		{"v2 TCP4", func(t *testing.T) string {
			return proxyV2(t, &net.TCPAddr{IP: net.ParseIP("198.51.100.9").To4(), Port: 5555}, dst, proxyproto.PROXY)
		}, "198.51.100.9", 5555},
		{"v2 TCP6", func(t *testing.T) string {
			return proxyV2(t, &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 5556},
				&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 25}, proxyproto.PROXY)
		}, "2001:db8::9", 5556},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := startReceiver(t, testConfig(behindProxy("127.0.0.1/32")), sink)
			c := rawDial(t, r.addr())
			noGreetingYet(t, c)
			c.send(tt.header(t))
			require.True(t, strings.HasPrefix(c.reply(), "220 "), "greeting after the header")
			c.expect("EHLO client.example.net", "250")
			assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))

			recs := records(sink)
			require.Len(t, recs, 1)
			attrs := recs[0].Attributes().AsRaw()
			assert.Equal(t, tt.wantAddr, attrs["client.address"])
			assert.Equal(t, tt.wantPort, attrs["client.port"])
			body := recs[0].Body().Map().AsRaw()
			assert.Equal(t, net.JoinHostPort(tt.wantAddr, strconv.Itoa(int(tt.wantPort))), body["remoteAddr"])
		})
	}
}

func TestProxyHeaderMissingOrBadGets421(t *testing.T) {
	tests := []struct {
		name  string
		send  string
		after time.Duration // wait for the timeout instead of sending
	}{
		{"missing: the client speaks SMTP at once", "EHLO client.example.net\r\n", 0},
		{"malformed v1 address", "PROXY TCP4 not-an-ip 192.0.2.1 40000 25\r\n", 0},
		{"malformed v1 port", "PROXY TCP4 203.0.113.7 192.0.2.1 99999 25\r\n", 0},
		{"v2 signature with a broken length", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x02ab", 0},
		{"v1 line without end", "PROXY TCP4 203.0.113.7 192.0.2.1 40000 25 " + strings.Repeat("x", 200), 0},
		{"late: nothing within the timeout", "", 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r, tel, _ := observedReceiver(t, testConfig(behindProxy("127.0.0.1/32")), sink)
			c := rawDial(t, r.addr())
			if tt.send != "" {
				c.send(tt.send)
			}
			assert.Equal(t, strings.TrimSpace(replyBadProxyHeader), c.reply())
			assert.True(t, c.closed(), "the connection is closed after the 421")
			assert.Empty(t, records(sink))
			metadatatest.AssertEqualSMTPConnectionsRejected(t, tel, []metricdata.DataPoint[int64]{
				{Attributes: workerAttr(attribute.String("reason", "proxy_protocol")), Value: 1},
			}, metricdatatest.IgnoreTimestamp())
		})
	}
}

func TestProxyHeaderFromUntrustedPeerIsRefused(t *testing.T) {
	sink := new(consumertest.LogsSink)
	// 127.0.0.1 is not among the trusted proxies: it is an ordinary client.
	r := startReceiver(t, testConfig(behindProxy("192.0.2.0/24")), sink)

	c := dial(t, r.addr()) // greeted at once, no header expected
	got := c.cmd("PROXY TCP4 203.0.113.7 192.0.2.1 40000 25")
	assert.True(t, strings.HasPrefix(got, "5"), "a PROXY line from an untrusted peer is refused: %q", got)
	c.expect("EHLO client.example.net", "250")
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	recs := records(sink)
	require.Len(t, recs, 1)
	assert.Equal(t, "127.0.0.1", recs[0].Attributes().AsRaw()["client.address"], "the claimed address is ignored")

	// A v2 header ends in QUIT by design: an untrusted peer's is never read
	// as one, and the session ends without a message.
	c2 := dial(t, r.addr())
	c2.send(proxyV2(t, &net.TCPAddr{IP: net.ParseIP("203.0.113.8").To4(), Port: 1}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1").To4(), Port: 25}, proxyproto.PROXY))
	assert.True(t, c2.closed())
	assert.Len(t, records(sink), 1)
}

func TestProxyLocalHeaderKeepsTheSocketAddress(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(behindProxy("127.0.0.1")), sink)
	c := rawDial(t, r.addr())
	// A balancer's own health check: v2 LOCAL, no addresses.
	h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	b, err := h.Format()
	require.NoError(t, err)
	c.send(string(b))
	require.True(t, strings.HasPrefix(c.reply(), "220 "))
	c.expect("EHLO client.example.net", "250")
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	assert.Equal(t, "127.0.0.1", records(sink)[0].Attributes().AsRaw()["client.address"])
}

// The per-client connection limit counts the client from the header, not
// the balancer, whose connections carry many clients.
func TestProxyClientAddressDrivesPerClientLimit(t *testing.T) {
	r := startReceiver(t, testConfig(func(c *Config) {
		behindProxy("127.0.0.1/32")(c)
		c.MaxConnectionsPerClient = 1
		// The balancer's own address is not exempt; a client network is.
		c.TrustedNetworks = []string{"198.51.100.0/24"}
	}), new(consumertest.LogsSink))
	open := func(client string) *rawClient {
		c := rawDial(t, r.addr())
		c.send("PROXY TCP4 " + client + " 192.0.2.1 40000 25\r\n")
		return c
	}
	first := open("203.0.113.7")
	require.True(t, strings.HasPrefix(first.reply(), "220 "))
	second := open("203.0.113.7")
	assert.Equal(t, strings.TrimSpace(replyTooManyConnections), second.reply(), "same client: over its limit")
	other := open("203.0.113.8")
	assert.True(t, strings.HasPrefix(other.reply(), "220 "), "another client behind the same balancer is served")
	for i := range 2 {
		trusted := open("198.51.100.5")
		assert.True(t, strings.HasPrefix(trusted.reply(), "220 "), "connection %d of a client in trusted_networks (by its header address) is exempt", i+1)
	}
}

func TestProxyProtocolValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"enabled without trusted proxies", func(c *Config) { c.ProxyProtocol.Enabled = true },
			"proxy_protocol.trusted_proxies: is required when proxy_protocol.enabled is true"},
		{"bad CIDR", func(c *Config) {
			c.ProxyProtocol.Enabled = true
			c.ProxyProtocol.TrustedProxies = []string{"10.0.0.0/33"}
		},
			`proxy_protocol.trusted_proxies[0]: "10.0.0.0/33" is not a CIDR or IP address`},
		{"zero timeout", func(c *Config) { c.ProxyProtocol.Timeout = 0 },
			"proxy_protocol.timeout: must be greater than 0, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := testConfig(tt.mod).Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	assert.NoError(t, testConfig(behindProxy("10.0.0.0/8", "192.0.2.7")).Validate())
}

func TestShutdownClosesConnectionsWaitingForTheirHeader(t *testing.T) {
	cfg := testConfig(behindProxy("127.0.0.1/32"))
	cfg.ProxyProtocol.Timeout = 60
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(nopSettings(), cfg, new(consumertest.LogsSink))
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context(), componenttest.NewNopHost()))
	c := rawDial(t, r.addr())
	noGreetingYet(t, c)

	require.NoError(t, r.Shutdown(t.Context()))
	assert.True(t, c.closed(), "a connection still waiting for its header is closed at shutdown")
}

// FuzzProxyHeader feeds arbitrary bytes to the header reader as a trusted
// proxy's first bytes: it must return either an error or a connection whose
// client address is a TCP address, and never panic or hang past its deadline.
func FuzzProxyHeader(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n",
		"PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\nEHLO x\r\n",
		"PROXY UNKNOWN\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x07\xc0\x00\x02\x01\x9c\x40\x00\x19",
		"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00",
		"EHLO x\r\n",
	} {
		f.Add([]byte(s))
	}
	l := &proxyListener{timeout: 200 * time.Millisecond}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		go func() {
			_, _ = client.Write(data)
			_ = client.Close()
		}()
		c, err := l.readHeader(server)
		if err != nil {
			return
		}
		if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok && c.RemoteAddr() != server.RemoteAddr() {
			t.Fatalf("client address %T %v from %q", c.RemoteAddr(), c.RemoteAddr(), data)
		}
	})
}
