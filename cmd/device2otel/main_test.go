package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const examplesDir = "../../examples"

// convertArgs runs the command and returns its exit code, stdout and stderr.
func convertArgs(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// convertString converts a device file given as text (read from stdin).
func convertString(t *testing.T, devices string, flags ...string) (int, string, string) {
	t.Helper()
	return convertArgs(t, devices, append(flags, "-")...)
}

func TestGoldenSpecExamples(t *testing.T) {
	code, out, errOut := convertArgs(t, "", filepath.Join(examplesDir, "devices.yaml"))
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut, "the spec's examples convert without warnings")

	golden := filepath.Join("testdata", "devices.golden.yaml")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(out), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./cmd/device2otel -run TestGolden -update to create it")
	assert.Equal(t, string(want), out, "output differs from %s; if the change is intended, run go test ./cmd/device2otel -update", golden)
}

func TestStdinMatchesFile(t *testing.T) {
	path := filepath.Join(examplesDir, "devices.yaml")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	code, fromFile, _ := convertArgs(t, "", path)
	require.Equal(t, 0, code)
	code, fromStdin, _ := convertString(t, string(data))
	require.Equal(t, 0, code)
	// Only the name of the source in the header comment differs.
	assert.Equal(t, strings.ReplaceAll(fromFile, "devices.yaml", "stdin"), fromStdin)
}

func TestDeterministic(t *testing.T) {
	path := filepath.Join(examplesDir, "devices.yaml")
	_, first, _ := convertArgs(t, "", path)
	for i := 0; i < 5; i++ {
		_, again, _ := convertArgs(t, "", path)
		require.Equal(t, first, again)
	}
}

// TestPipelineExampleMatchesConverter keeps examples/pipeline.yaml's
// processors equal to what the converter writes for the device.
func TestPipelineExampleMatchesConverter(t *testing.T) {
	code, out, errOut := convertString(t, `
- id: 5
  name: pipeline_smtp
  type: smtp
  pipelines: [email_parser, spam_filter]
  properties: {port: 2527}
`)
	require.Equal(t, 0, code, errOut)
	var generated, example map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(out), &generated))
	data, err := os.ReadFile(filepath.Join(examplesDir, "pipeline.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &example))
	assert.Equal(t, generated["processors"], example["processors"],
		"regenerate the processors of examples/pipeline.yaml with go run ./cmd/device2otel")
}

// decode parses the converter's output.
func decode(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(out), &m), out)
	return m
}

func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func TestReceiverFieldsMappedOneToOne(t *testing.T) {
	code, out, errOut := convertString(t, `
- id: 7
  name: full
  description: every field
  type: smtp
  tags: [a, b]
  status: true
  properties:
    address: 10.0.0.1
    port: 2600
    username: mailuser
    password: ${env:PW}
    timeout: 20
    reuse: true
    workers: 3
    buffer_size: 16384
    stats_frequency: 30
    max_message_bytes: 1048576
    tls: {status: true, cert_name: a.crt, key_name: a.key, min_version: "1.3"}
`)
	require.Equal(t, 0, code, errOut)
	cfg := decode(t, out)
	want := map[string]any{
		"id": 7, "name": "full", "description": "every field", "tags": []any{"a", "b"},
		"address": "10.0.0.1", "port": 2600, "username": "mailuser", "password": "${env:PW}",
		"timeout": 20, "reuse": true, "workers": 3, "buffer_size": 16384, "stats_frequency": 30,
		"max_message_bytes": 1048576,
		"tls":               map[string]any{"status": true, "cert_name": "a.crt", "key_name": "a.key", "min_version": "1.3"},
	}
	assert.Equal(t, want, dig(cfg, "receivers", "smtp/full"))
	assert.Equal(t, map[string]any{"receivers": []any{"smtp/full"}, "exporters": []any{"debug"}},
		dig(cfg, "service", "pipelines", "logs/full"))
	assert.Contains(t, out, "max_message_bytes: 1048576 # extension")
	assert.Empty(t, errOut)
}

func TestPasswordsAndDollars(t *testing.T) {
	code, out, errOut := convertString(t, `
- id: 1
  name: pw
  type: smtp
  description: costs $5
  properties: {port: 2600, username: u, password: "pa$$w${x}"}
`)
	require.Equal(t, 0, code)
	// The collector turns $$ into $ and expands ${...}: double every $ so the
	// receiver gets what the device file says.
	assert.Contains(t, out, `password: "pa$$$$w$${x}"`)
	assert.Contains(t, out, `description: "costs $$5"`)
	assert.Contains(t, errOut, "password is written to the output in plain text")
}

func TestStatusFalseLeftOut(t *testing.T) {
	code, out, errOut := convertString(t, `
- id: 1
  name: on
  type: smtp
  properties: {port: 2600}
- id: 2
  name: off
  type: smtp
  status: false
  properties: {port: 2600}
`)
	require.Equal(t, 0, code, errOut)
	cfg := decode(t, out)
	assert.NotNil(t, dig(cfg, "receivers", "smtp/on"))
	assert.Nil(t, dig(cfg, "receivers", "smtp/off"))
	assert.Nil(t, dig(cfg, "service", "pipelines", "logs/off"))
	assert.Contains(t, out, `# device "off" (id 2) (line 6): status: false, so smtp/off is left out.`)
	assert.Contains(t, errOut, `device "off" (id 2): status is false; left out of the config`)
}

func TestOtherTypeSkipped(t *testing.T) {
	code, out, errOut := convertString(t, `
- id: 1
  name: mail
  type: smtp
  properties: {port: 2600}
- id: 2
  name: logs
  type: syslog
  properties: {port: "not checked", protocol: udp}
`)
	require.Equal(t, 0, code, errOut)
	cfg := decode(t, out)
	assert.Len(t, dig(cfg, "receivers"), 1)
	assert.Contains(t, errOut, `device "logs" (id 2): type "syslog" is not supported by this converter (only smtp); skipped`)
	assert.Contains(t, out, "type syslog is not converted; skipped.")
}

func TestUnknownPipelinePlaceholder(t *testing.T) {
	code, out, errOut := convertString(t, `
- id: 1
  name: mail
  type: smtp
  pipelines: [geo_enrich, spam_filter]
  properties: {port: 2600}
`)
	require.Equal(t, 0, code, errOut)
	cfg := decode(t, out)
	assert.Equal(t, []any{"transform/geo_enrich", "filter/spam_filter"}, dig(cfg, "service", "pipelines", "logs/mail", "processors"))
	assert.Equal(t, map[string]any{"error_mode": "ignore", "log_statements": []any{}}, dig(cfg, "processors", "transform/geo_enrich"))
	assert.Contains(t, out, `# PLACEHOLDER for device pipeline "geo_enrich"`)
	assert.Contains(t, errOut, `pipeline "geo_enrich" (line 5) has no built-in equivalent; transform/geo_enrich is a placeholder`)
}

func TestSharedPipelineDefinedOnce(t *testing.T) {
	code, out, errOut := convertString(t, `
- {id: 1, name: a, type: smtp, pipelines: [spam_filter], properties: {port: 2600}}
- {id: 2, name: b, type: smtp, pipelines: [spam_filter], properties: {port: 2601}}
`)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 1, strings.Count(out, "filter/spam_filter:"))
	cfg := decode(t, out)
	assert.Equal(t, []any{"filter/spam_filter"}, dig(cfg, "service", "pipelines", "logs/b", "processors"))
}

func TestSpamScoreThreshold(t *testing.T) {
	devices := "- {id: 1, name: a, type: smtp, pipelines: [spam_filter], properties: {port: 2600}}\n"
	_, out, _ := convertString(t, devices)
	assert.Contains(t, out, `["score"]) > 5.0'`)
	code, out, errOut := convertString(t, devices, "--spam-score-threshold", "8")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `["score"]) > 8.0'`)
	assert.NotContains(t, out, "> 5.0")
	code, _, errOut = convertString(t, devices, "--spam-score-threshold", "high")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "invalid value")
}

// The receiver writes header names in canonical form, so the conditions
// name each header once, in that form.
func TestSpamConditionsUseCanonicalHeaderNames(t *testing.T) {
	conds := strings.Join(spamConditions(5), "\n")
	for _, h := range []string{"X-Spam-Flag", "X-Spam-Status", "X-Spam-Score"} {
		assert.Contains(t, conds, `log.body["headers"]["`+h+`"]`)
		assert.NotContains(t, conds, `log.body["headers"]["`+strings.ToUpper(h)+`"]`)
	}
}

// TestParserLeavesXMailerToReceiver: the receiver sets email.x_mailer
// (X-Mailer, else User-Agent) itself, so email_parser has no statement for
// it, and each header it reads is named once, in canonical form.
func TestParserLeavesXMailerToReceiver(t *testing.T) {
	stmts := parserStatements()
	for _, s := range stmts {
		assert.NotContains(t, s, `log.attributes["email.x_mailer"]`)
	}
	all := strings.Join(stmts, "\n")
	assert.Equal(t, 1, strings.Count(all, `set(log.attributes["email.list_id"], log.body`), "List-Id read once")
	assert.NotContains(t, all, `"List-ID"`)
}

func TestComponentNames(t *testing.T) {
	code, out, errOut := convertString(t, `- {id: 1, name: "mail server", type: smtp, properties: {port: 2600}}`)
	require.Equal(t, 0, code, errOut)
	cfg := decode(t, out)
	assert.Equal(t, "mail server", dig(cfg, "receivers", "smtp/mail_server", "name"))
	assert.Contains(t, errOut, "the receiver is called smtp/mail_server")
}

func TestUsage(t *testing.T) {
	code, _, errOut := convertArgs(t, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "Usage: device2otel")
	code, _, errOut = convertArgs(t, "", "does-not-exist.yaml")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "does-not-exist.yaml")
}

// specVerbatim is the spec's five examples as printed: three devices on port
// 25 and two on 587.
const specVerbatim = `
- id: 1
  name: basic_smtp
  type: smtp
  properties:
    address: "0.0.0.0"
    port: 25
- id: 2
  name: secure_smtp
  type: smtp
  properties:
    address: "0.0.0.0"
    port: 587
    username: "mailuser"
    password: "secret"
    timeout: 30
    tls:
      status: true
      cert_name: "smtp.crt"
      key_name: "smtp.key"
- id: 3
  name: performant_smtp
  type: smtp
  properties:
    address: "0.0.0.0"
    port: 25
    timeout: 60
    reuse: true
    workers: 4
    buffer_size: 32768
    stats_frequency: 60
- id: 4
  name: submission_smtp
  type: smtp
  properties:
    address: "0.0.0.0"
    port: 587
    username: "mailuser"
    password: "secret"
    timeout: 30
    tls:
      status: true
      cert_name: "smtp.crt"
      key_name: "smtp.key"
    reuse: true
    workers: 2
- id: 5
  name: pipeline_smtp
  type: smtp
  pipelines:
    - email_parser
    - spam_filter
  properties:
    address: "0.0.0.0"
    port: 25
    timeout: 30
`

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		devices string
		want    []string
		notWant []string
	}{
		{
			name:    "malformed YAML",
			devices: "- id: 1\n  name: a\n  type: smtp\n   properties: {port: 25}\n",
			want:    []string{"stdin: malformed YAML: line 4: mapping values are not allowed in this context"},
		},
		{
			name:    "unclosed flow mapping",
			devices: "- id: 1\n  name: a\n  type: smtp\n  properties: {port: 25\n",
			want:    []string{"stdin: malformed YAML: line ", "did not find expected ',' or '}'"},
		},
		{
			name:    "empty file",
			devices: "",
			want:    []string{"stdin: the file is empty"},
		},
		{
			name:    "not a list",
			devices: "devices:\n  - id: 1\n",
			want:    []string{"stdin:1:1: expected a list of devices (- id: 1 ...), got a mapping"},
		},
		{
			name:    "device not a mapping",
			devices: "- smtp\n",
			want:    []string{`stdin:1:3: device #1: expected a mapping (id, name, type, properties, ...), got the string "smtp"`},
		},
		{
			name:    "missing id",
			devices: "- name: a\n  type: smtp\n  properties: {port: 2600}\n",
			want:    []string{`stdin:1:3: device "a": id is required`},
		},
		{
			name:    "missing name",
			devices: "- id: 3\n  type: smtp\n  properties: {port: 2600}\n",
			want:    []string{"stdin:1:3: device #1 (id 3): name is required"},
		},
		{
			name:    "empty name",
			devices: "- id: 3\n  name: \"\"\n  type: smtp\n  properties: {port: 2600}\n",
			want:    []string{"stdin:2:9: device #1: name must not be empty"},
		},
		{
			name:    "missing type",
			devices: "- id: 3\n  name: a\n  properties: {port: 2600}\n",
			want:    []string{`stdin:1:3: device "a" (id 3): type is required (type: smtp)`},
		},
		{
			name:    "missing port",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties:\n    address: 127.0.0.1\n",
			want:    []string{`stdin:5: device "a" (id 3): properties.port: is required; set it to the TCP port to listen on`},
		},
		{
			name:    "missing properties",
			devices: "- id: 3\n  name: a\n  type: smtp\n",
			want:    []string{`stdin:1:3: device "a" (id 3): properties is required (at least properties.port)`},
		},
		{
			name:    "port as a quoted string",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties:\n    port: \"25\"\n",
			want:    []string{`stdin:5:11: device "a" (id 3): properties.port: expected a whole number, got the string "25"; remove the quotes`},
		},
		{
			name:    "port out of range",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: {port: 70000}\n",
			want:    []string{`stdin:4: device "a" (id 3): properties.port: 70000 is out of range`},
		},
		{
			name:    "id not a number",
			devices: "- id: one\n  name: a\n  type: smtp\n  properties: {port: 2600}\n",
			want:    []string{`stdin:1:7: device "a": id: expected a whole number, got the string "one"`},
		},
		{
			name:    "timeout fractional",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: {port: 2600, timeout: 1.5}\n",
			want:    []string{`stdin:4:37: device "a" (id 3): properties.timeout: expected a whole number, got 1.5`},
		},
		{
			name:    "status not a boolean",
			devices: "- id: 3\n  name: a\n  type: smtp\n  status: \"no\"\n  properties: {port: 2600}\n",
			want:    []string{`stdin:4:11: device "a" (id 3): status: expected true or false, got the string "no"; write true or false without quotes`},
		},
		{
			name:    "reuse not a boolean",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: {port: 2600, reuse: 1}\n",
			want:    []string{`stdin:4:35: device "a" (id 3): properties.reuse: expected true or false, got the number 1`},
		},
		{
			name:    "tags not a list",
			devices: "- id: 3\n  name: a\n  type: smtp\n  tags: mail\n  properties: {port: 2600}\n",
			want:    []string{`stdin:4:9: device "a" (id 3): tags: expected a list of strings, got the string "mail"`},
		},
		{
			name:    "name a list",
			devices: "- id: 3\n  name: [a]\n  type: smtp\n  properties: {port: 2600}\n",
			want:    []string{`stdin:2:9: device #1: name: expected a string, got a list`},
		},
		{
			name:    "properties a list",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: [port, 25]\n",
			want:    []string{`stdin:4:15: device "a" (id 3): properties: expected a mapping (address, port, ...), got a list`},
		},
		{
			name:    "tls a string",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: {port: 2600, tls: yes}\n",
			want:    []string{`stdin:4:33: device "a" (id 3): properties.tls: expected a mapping (status, cert_name, key_name), got the string "yes"`},
		},
		{
			name:    "extension block a string",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: {port: 2600, proxy_protocol: on}\n",
			want:    []string{`stdin:4:44: device "a" (id 3): properties.proxy_protocol: expected a mapping (enabled, `},
		},
		{
			name:    "unknown field in an extension block",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: {port: 2600, proxy_protocol: {enable: true}}\n",
			want:    []string{`device "a" (id 3): unknown field properties.proxy_protocol.enable; known fields: enabled, `},
			notWant: []string{"known fields:  (and"},
		},
		{
			name:    "pipelines not names",
			devices: "- id: 3\n  name: a\n  type: smtp\n  pipelines: [{name: x}]\n  properties: {port: 2600}\n",
			want:    []string{`stdin:4:15: device "a" (id 3): pipelines: expected a pipeline name, got a mapping`},
		},
		{
			name:    "unknown property",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties: {port: 2600, prot: 25}\n",
			want:    []string{`stdin:4:28: device "a" (id 3): unknown field properties.prot; known fields: address, port,`},
		},
		{
			name:    "unknown device field",
			devices: "- id: 3\n  name: a\n  type: smtp\n  pipeline: [spam_filter]\n  properties: {port: 2600}\n",
			want:    []string{`stdin:4:3: device "a" (id 3): unknown field "pipeline"; a device has id, name, description, type, tags, pipelines, status, properties`},
		},
		{
			name:    "tls on without cert and key",
			devices: "- id: 3\n  name: a\n  type: smtp\n  properties:\n    port: 2600\n    tls: {status: true}\n",
			want: []string{
				`stdin:6: device "a" (id 3): properties.tls.cert_name: is required when tls.status is true`,
				`stdin:6: device "a" (id 3): properties.tls.key_name: is required when tls.status is true`,
			},
		},
		{
			name:    "duplicate name",
			devices: "- {id: 1, name: a, type: smtp, properties: {port: 2600}}\n- {id: 2, name: a, type: smtp, properties: {port: 2601}}\n",
			want:    []string{`stdin:2: device "a" (id 2): duplicate name "a" (also used by device "a" (id 1) at line 1); names must be unique`},
		},
		{
			name:    "duplicate id",
			devices: "- {id: 1, name: a, type: smtp, properties: {port: 2600}}\n- {id: 1, name: b, type: smtp, properties: {port: 2601}}\n",
			want:    []string{`stdin:2: device "b" (id 1): duplicate id 1 (also used by device "a" (id 1) at line 1); ids must be unique`},
		},
		{
			name:    "duplicate component name",
			devices: "- {id: 1, name: \"a b\", type: smtp, properties: {port: 2600}}\n- {id: 2, name: a_b, type: smtp, properties: {port: 2601}}\n",
			want:    []string{`stdin:2: device "a_b" (id 2): name "a_b" and the name "a b" of device "a b" (id 1) (line 1) both become the component name "a_b"; rename one`},
		},
		{
			name:    "duplicate port (the spec's examples as printed)",
			devices: specVerbatim,
			want: []string{
				`stdin:26: device "performant_smtp" (id 3): port 25 is already used by device "basic_smtp" (id 1) (line 2) on 0.0.0.0; give each device its own port`,
				`stdin:37: device "submission_smtp" (id 4): port 587 is already used by device "secure_smtp" (id 2) (line 8) on 0.0.0.0`,
				`stdin:55: device "pipeline_smtp" (id 5): port 25 is already used by device "basic_smtp" (id 1) (line 2)`,
			},
		},
		{
			name:    "duplicate port on a wildcard address",
			devices: "- {id: 1, name: a, type: smtp, properties: {port: 2600}}\n- {id: 2, name: b, type: smtp, properties: {port: 2600, address: 127.0.0.1}}\n",
			want:    []string{`device "b" (id 2): port 2600 is already used by device "a" (id 1) (line 1) on 0.0.0.0`},
		},
		{
			name:    "no enabled smtp device",
			devices: "- {id: 1, name: a, type: smtp, status: false, properties: {port: 2600}}\n",
			want:    []string{"stdin: no enabled smtp device; nothing to convert"},
		},
		{
			name:    "several problems reported together",
			devices: "- name: a\n  type: smtp\n  properties: {}\n- id: 2\n  type: smtp\n  properties: {port: x}\n",
			want: []string{
				`stdin:1:3: device "a": id is required`,
				`stdin:3: device "a": properties.port: is required`,
				`stdin:4:3: device #2 (id 2): name is required`,
				`stdin:6:22: device #2 (id 2): properties.port: expected a whole number, got the string "x"`,
			},
			// A port of the wrong type is not also reported as missing.
			notWant: []string{"stdin:6: device #2 (id 2): properties.port: is required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := convertString(t, tt.devices)
			assert.Equal(t, 1, code, "stderr: %s", errOut)
			assert.Empty(t, out, "nothing on stdout after an error")
			for _, w := range tt.want {
				assert.Contains(t, errOut, w)
			}
			for _, w := range tt.notWant {
				assert.NotContains(t, errOut, w)
			}
		})
	}
}

func TestDuplicatePortsOnDifferentAddressesAllowed(t *testing.T) {
	code, _, errOut := convertString(t, "- {id: 1, name: a, type: smtp, properties: {port: 2600, address: 127.0.0.1}}\n- {id: 2, name: b, type: smtp, properties: {port: 2600, address: 127.0.0.2}}\n- {id: 3, name: c, type: smtp, status: false, properties: {port: 2600}}\n")
	assert.Equal(t, 0, code, errOut)
}

// TestTelemetryAddress: by default the output turns the collector's own
// metrics off, so that converted configs run side by side (each would bind
// 127.0.0.1:8888); --telemetry-address serves them where asked.
func TestTelemetryAddress(t *testing.T) {
	const devices = "- {id: 1, name: a, type: smtp, properties: {port: 2600}}\n"
	code, out, errOut := convertString(t, devices)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, map[string]any{"metrics": map[string]any{"level": "none"}}, dig(decode(t, out), "service", "telemetry"))

	code, out, errOut = convertString(t, devices, "--telemetry-address", "127.0.0.1:8899")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, map[string]any{"metrics": map[string]any{"readers": []any{map[string]any{"pull": map[string]any{
		"exporter": map[string]any{"prometheus": map[string]any{"host": "127.0.0.1", "port": 8899}}}}}}},
		dig(decode(t, out), "service", "telemetry"))

	code, out, errOut = convertString(t, devices, "--telemetry-address", "[::1]:8899")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `host: "::1"`)

	for _, bad := range []string{"8899", ":8899", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:http"} {
		code, out, errOut = convertString(t, devices, "--telemetry-address", bad)
		assert.Equal(t, 2, code, bad)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "--telemetry-address", bad)
	}
}

func TestVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "1.2.3-test"
	code, out, errOut := convertArgs(t, "", "--version")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "device2otel version 1.2.3-test\n", out)

	version = ""
	code, out, _ = convertArgs(t, "", "--version")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^device2otel version \S+\n$`, out)
}
