package smtpreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// Tiny alert mail from devices often has no header at all, or one field
// followed by the text: the record keeps that text in body (issue 10.3).
func TestHeaderlessMessageKeepsText(t *testing.T) {
	tests := []struct {
		name, msg, wantBody string
		wantHeaders         map[string]any
	}{
		{"no header", "UPS on battery, 10 minutes left\r\n", "UPS on battery, 10 minutes left\n", map[string]any{}},
		{"field then text", "Alert: disk full\r\nhost1 /var is 100% used\r\n", "host1 /var is 100% used\n",
			map[string]any{"Alert": []any{"disk full"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := startReceiver(t, testConfig(nil), sink)
			c := dial(t, r.addr())
			c.expect("EHLO x", "250")
			assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, tt.msg))
			recs := records(sink)
			require.Len(t, recs, 1)
			body := recs[0].Body().Map().AsRaw()
			assert.Equal(t, tt.wantBody, body["body"])
			assert.Equal(t, tt.wantHeaders, body["headers"])
			_, marked := recs[0].Attributes().Get("email.parse_error")
			assert.True(t, marked, "a message without a header/body separator is marked")
		})
	}
}
