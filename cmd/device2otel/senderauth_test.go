package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSenderAuthPassedThrough: the sender_auth block, dns included, moves
// over key for key; its keys are checked like every other field.
func TestSenderAuthPassedThrough(t *testing.T) {
	code, out, errOut := convertString(t, `
- id: 8
  name: mx
  type: smtp
  properties:
    port: 25
    trusted_networks: [192.0.2.25]
    sender_auth:
      enabled: true
      checks: [spf, dkim, dmarc]
      timeout: 5
      max_dkim_signatures: 5
      dmarc_discovery: psl
      skip_trusted_networks: true
      skip_authenticated: true
      authserv_id: mx.example.com
      trust_upstream: [relay.example.com]
      dns: {server: "127.0.0.1:53", timeout: 2, cache_entries: 10000}
`)
	require.Equal(t, 0, code, errOut)
	want := map[string]any{
		"enabled": true, "checks": []any{"spf", "dkim", "dmarc"}, "timeout": 5, "max_dkim_signatures": 5,
		"dmarc_discovery": "psl", "skip_trusted_networks": true, "skip_authenticated": true,
		"authserv_id": "mx.example.com", "trust_upstream": []any{"relay.example.com"},
		"dns": map[string]any{"server": "127.0.0.1:53", "timeout": 2, "cache_entries": 10000},
	}
	assert.Equal(t, want, dig(decode(t, out), "receivers", "smtp/mx", "sender_auth"))
	assert.Contains(t, out, "sender_auth: # extension")

	code, _, errOut = convertString(t, "- {id: 9, name: b, type: smtp, properties: {port: 26, sender_auth: {dns: {servr: x}, timeout: \"5\"}}}\n")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "unknown field properties.sender_auth.dns.servr")
	assert.Contains(t, errOut, `properties.sender_auth.timeout: expected a whole number, got the string "5"`)
}
