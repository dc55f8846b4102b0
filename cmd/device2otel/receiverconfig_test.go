package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"
)

// receiverKeys lists every key of the receiver's config as the collector's
// own encoder writes it (confmap, not this package's reflection), with the
// default value, "tls.x" for nested ones.
func receiverKeys(t *testing.T) map[string]any {
	t.Helper()
	cfg := smtpreceiver.NewFactory().CreateDefaultConfig()
	conf := confmap.New()
	require.NoError(t, conf.Marshal(cfg))
	out := map[string]any{}
	for _, k := range conf.AllKeys() {
		out[strings.ReplaceAll(k, confmap.KeyDelimiter, ".")] = conf.Get(k)
	}
	// Keys whose default is unset are not written; they are fields all the
	// same.
	for _, k := range []string{"port", "require_tls"} {
		if _, ok := out[k]; !ok {
			out[k] = nil
		}
	}
	return out
}

// TestEveryReceiverFieldPassesThrough: the converter accepts every field the
// receiver has under properties (pipeline_timeout was refused once, though
// the docs promise every field) and writes it into the receiver block.
func TestEveryReceiverFieldPassesThrough(t *testing.T) {
	sample := map[string]any{
		"port": 2600, "address": "127.0.0.1", "username": "u", "password": "p",
		"pipeline_timeout": 45, "require_tls": false, "trusted_networks": []any{"10.0.0.0/8"},
		"tls.min_version": "1.3", "body_format": "json", "domain": "mx.example.com",
	}
	keys := receiverKeys(t)
	props := map[string]any{}
	for k, v := range keys {
		if identityFields[k] {
			continue
		}
		if s, ok := sample[k]; ok {
			v = s
		}
		if v == nil {
			continue // a pointer unset by default, e.g. require_tls: sampled above
		}
		// Nested keys ("tls.status", "sender_auth.dns.server") go into
		// their blocks.
		path := strings.Split(k, ".")
		m := props
		for _, block := range path[:len(path)-1] {
			inner, _ := m[block].(map[string]any)
			if inner == nil {
				inner = map[string]any{}
				m[block] = inner
			}
			m = inner
		}
		m[path[len(path)-1]] = v
	}
	for k, v := range sample {
		if _, ok := keys[k]; ok && v != nil {
			continue
		}
		t.Fatalf("sample key %s is not a receiver field", k)
	}
	device := []any{map[string]any{"id": 1, "name": "all", "type": "smtp", "properties": props}}
	doc, err := yaml.Marshal(device)
	require.NoError(t, err)

	code, out, errOut := convertString(t, string(doc))
	require.Equal(t, 0, code, "device file:\n%s\nstderr:\n%s", doc, errOut)
	recv, ok := dig(decode(t, out), "receivers", "smtp/all").(map[string]any)
	require.True(t, ok, out)
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if identityFields[k] {
			continue
		}
		path := strings.Split(k, ".")
		m := recv
		for _, block := range path[:len(path)-1] {
			m, _ = m[block].(map[string]any)
		}
		assert.Contains(t, m, path[len(path)-1], "%s passed through", k)
	}
	assert.Equal(t, 45, recv["pipeline_timeout"])
}

// TestConverterRefusesWhatTheReceiverRefuses: values the collector would
// refuse at start are refused by the converter, with the receiver's own
// message, at the line of the field.
func TestConverterRefusesWhatTheReceiverRefuses(t *testing.T) {
	tests := []struct {
		name  string
		props string
		want  string
	}{
		{"negative workers", "port: 2600, workers: -2", `stdin:1: device "a" (id 1): properties.workers: must be greater than 0, got -2`},
		{"zero buffer", "port: 2600, buffer_size: 0", "properties.buffer_size: must be greater than 0, got 0"},
		{"negative stats frequency", "port: 2600, stats_frequency: -1", "properties.stats_frequency: must be greater than 0, got -1"},
		{"zero timeout", "port: 2600, timeout: 0", "properties.timeout: must be greater than 0, got 0"},
		{"username without password", "port: 2600, username: u", "properties.password: is required when username is set"},
		{"short line length", "port: 2600, max_line_length: 100", "properties.max_line_length: must be at least 512"},
		{"bad domain", `port: 2600, domain: "mx.example.com 250 x"`, "properties.domain: must be a host name"},
		{"bad trusted network", "port: 2600, trusted_networks: [nope]", `properties.trusted_networks[0]: "nope" is not a CIDR`},
		{"tls without files", "port: 2600, tls: {status: true}", "properties.tls.cert_name: is required when tls.status is true"},
		{"bad tls version", `port: 2600, tls: {status: true, cert_name: a, key_name: b, min_version: "1.1"}`, `properties.tls.min_version: must be "1.2" or "1.3"`},
		{"port zero (device-only check)", "port: 0", "properties.port: 0 would listen on a random free port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := convertString(t, fmt.Sprintf("- {id: 1, name: a, type: smtp, properties: {%s}}\n", tt.props))
			assert.Equal(t, 1, code, errOut)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tt.want)
		})
	}
}

// TestReferencesAndFilesNotChecked: a ${...} value is unknown until the
// collector expands it, and the files a config names live on the
// collector's machine, so neither fails the conversion.
func TestReferencesAndFilesNotChecked(t *testing.T) {
	code, _, errOut := convertString(t, `
- id: 1
  name: a
  type: smtp
  properties:
    port: ${env:SMTP_PORT}
    username: mailuser
    password: ${env:SMTP_PASSWORD}
    max_connections: ${env:MAX_CONNECTIONS}
    max_connections_per_client: 2000
    credentials_file: ""
    tls: {status: true, cert_name: /nonexistent/smtp.crt, key_name: /nonexistent/smtp.key, client_ca_file: missing-ca.pem}
`)
	assert.Equal(t, 0, code, errOut)
}

func TestRepeatedPipelineRefused(t *testing.T) {
	code, _, errOut := convertString(t, `
- id: 1
  name: a
  type: smtp
  pipelines: [spam_filter, email_parser, spam_filter, geo enrich, geo_enrich]
  properties: {port: 2600}
`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `stdin:5: device "a" (id 1): pipelines: "spam_filter" (line 5) and "spam_filter" both become processor filter/spam_filter`)
	assert.Contains(t, errOut, `"geo enrich" (line 5) and "geo_enrich" both become processor transform/geo_enrich`)
}

// TestNumberKind: a receiver field with a fractional type (none today; a
// rate could be one) is read, checked and written as a number, not refused
// at start.
func TestNumberKind(t *testing.T) {
	assert.Equal(t, kindNumber, kindOf("rate", reflect.TypeFor[float64]()))
	assert.Equal(t, kindInt, kindOf("port", reflect.TypeFor[*int]()))
	assert.Panics(t, func() { kindOf("m", reflect.TypeFor[map[string]int]()) })

	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("rate: 1.5\nbad: x\n"), &doc))
	m := doc.Content[0]
	el := &errorList{file: "t"}
	v, ok := checkScalar(el, "rate", m.Content[1], kindNumber, true)
	require.True(t, ok)
	assert.InDelta(t, 1.5, v.f, 0)
	_, ok = checkScalar(el, "bad", m.Content[3], kindNumber, true)
	assert.False(t, ok)
	assert.ErrorContains(t, el.err(), `bad: expected a number, got the string "x"`)

	fields := []field{{spec: fieldSpec{name: "rate", kind: kindNumber}, val: value{f: 1.5}}}
	out := map[string]any{}
	addFields(out, fields)
	assert.Equal(t, map[string]any{"rate": 1.5}, out)
	nodes := fieldNodes(fields)
	require.Len(t, nodes, 2)
	assert.Equal(t, "1.5", nodes[1].Value)
}
