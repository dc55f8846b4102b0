package smtpreceiver

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadatatest"
)

func TestRecipientFilterAccepts(t *testing.T) {
	f := newRecipientFilter([]string{"DMARC@Example.org", "*@alerts.example.com"})
	tests := []struct {
		addr string
		want bool
	}{
		{"dmarc@example.org", true},
		{"DMARC@EXAMPLE.ORG", true},
		{"other@example.org", false},
		{"ups@alerts.example.com", true},
		{"UPS@Alerts.Example.Com", true},
		{"ups@sub.alerts.example.com", false},
		{"alerts.example.com", false},
		{"dmarc@example.org.evil.test", false},
		{"\"x@alerts.example.com\"@example.net", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, f.accepts(tt.addr), tt.addr)
	}
	var none *recipientFilter = newRecipientFilter(nil)
	assert.True(t, none.accepts("anyone@example.net"), "no accepted_recipients accepts all")
}

func TestValidateRecipientPattern(t *testing.T) {
	for _, ok := range []string{"dmarc@example.org", "*@example.org", "Ops.Team+x@example.org"} {
		assert.NoError(t, validateRecipientPattern(ok), ok)
	}
	for _, bad := range []string{"", "example.org", "@example.org", "dmarc@", "a@b@example.org", "<a@example.org>", "a b@example.org", "ops*@example.org", "*@*.example.org"} {
		assert.Error(t, validateRecipientPattern(bad), bad)
	}
	cfg := testConfig(func(c *Config) { c.AcceptedRecipients = []string{"ok@example.org", "example.org"} })
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `accepted_recipients[1]: "example.org" is not an address or *@domain pattern`)
}

func TestAcceptedRecipientsRefuseOthersWith550(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r, tel, _ := observedReceiver(t, testConfig(func(c *Config) {
		c.AcceptedRecipients = []string{"dmarc@example.org", "*@alerts.example.com"}
	}), sink)
	c := dial(t, r.addr())
	c.expect("EHLO client.example.net", "250")
	c.expect("MAIL FROM:<reports@example.net>", "250")
	c.expect("RCPT TO:<spam-target@example.org>", "550 5.1.1 ")
	c.expect("RCPT TO:<Dmarc@Example.ORG>", "250")
	c.expect("RCPT TO:<ups@alerts.example.com>", "250")
	c.expect("RCPT TO:<ops@elsewhere.example.net>", "550 5.1.1 ")
	c.expect("DATA", "354")
	c.send(dotTerminated(simpleMessage))
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())

	recs := records(sink)
	require.Len(t, recs, 1)
	assert.Equal(t, []any{"Dmarc@Example.ORG", "ups@alerts.example.com"}, recs[0].Body().Map().AsRaw()["to"],
		"only the accepted recipients are in the record")
	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualSMTPRecipientsRejected(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("reason", "not_accepted")), Value: 2},
	}, ignore...)

	// A transaction whose only recipient is refused carries no message.
	c.expect("MAIL FROM:<spam@example.net>", "250")
	c.expect("RCPT TO:<postmaster@example.org>", "550 5.1.1 ")
	assert.True(t, strings.HasPrefix(c.cmd("DATA"), "502 5.5.1 "), "DATA without an accepted recipient is refused")
}

func TestOpenSinkWarning(t *testing.T) {
	public := &net.TCPAddr{IP: net.IPv4zero, Port: 25}
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2525}
	tests := []struct {
		name string
		mod  func(*Config)
		addr net.Addr
		warn bool
	}{
		{"all interfaces, open", nil, public, true},
		{"loopback only", nil, loopback, false},
		{"with accepted_recipients", func(c *Config) { c.AcceptedRecipients = []string{"*@example.org"} }, public, false},
		{"with AUTH", func(c *Config) { c.Username, c.Password = "u", "p" }, public, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := openSinkWarning(testConfig(tt.mod), tt.addr)
			assert.Equal(t, tt.warn, got != "", got)
			if tt.warn {
				assert.Contains(t, got, "accepted_recipients")
			}
		})
	}
}

func TestStartWarnsWhenOpenToTheNetwork(t *testing.T) {
	// 0.0.0.0 is bound for a moment; the test talks to nobody over it.
	_, _, logs := observedReceiver(t, testConfig(func(c *Config) { c.Address = "0.0.0.0" }), new(consumertest.LogsSink))
	assert.Equal(t, 1, logs.FilterMessageSnippet("neither AUTH nor accepted_recipients").Len())

	_, _, logs = observedReceiver(t, testConfig(nil), new(consumertest.LogsSink))
	assert.Equal(t, 0, logs.FilterMessageSnippet("neither AUTH nor accepted_recipients").Len(), "loopback: no warning")
}
