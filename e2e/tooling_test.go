//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplesSideBySide: the examples docs/devices.md says run together do,
// with their own telemetry settings (the second collector used to die
// binding 127.0.0.1:8888). Only the SMTP ports are moved (the examples'
// fixed ones may be taken on this machine) and a file exporter added; each
// collector's own metrics are then scraped where its example says.
func TestExamplesSideBySide(t *testing.T) {
	examples := []struct {
		file, receiver, pipeline string
		metricsPort              int // 127.0.0.1
	}{
		{"basic.yaml", "smtp/basic_smtp", "logs/basic_smtp", 8891},
		{"pipeline.yaml", "smtp/pipeline_smtp", "logs/pipeline_smtp", 8895},
		{"high-volume.yaml", "smtp/performant_smtp", "logs/performant_smtp", 8893},
	}
	for _, ex := range examples {
		startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
			override := fmt.Sprintf("receivers:\n  %s:\n    port: %d\nexporters:\n%sservice:\n  pipelines:\n    %s:\n      exporters: [file]\n",
				ex.receiver, port, fileExporter(out), ex.pipeline)
			return []string{
				filepath.Join(repoRoot, "examples", ex.file),
				writeFile(t, filepath.Join(dir, "override.yaml"), override),
			}
		})
	}
	for _, ex := range examples {
		if body := scrape(t, ex.metricsPort); !strings.Contains(body, "otelcol_") {
			t.Errorf("%s: 127.0.0.1:%d/metrics serves no collector metrics:\n%.500s", ex.file, ex.metricsPort, body)
		}
	}
}

// TestConvertedConfigsSideBySide: two device files converted with the
// defaults run at once (the converter's output used to bind 8888 each).
func TestConvertedConfigsSideBySide(t *testing.T) {
	converter := filepath.Join(repoRoot, "bin", "device2otel")
	for i, name := range []string{"side_a", "side_b"} {
		c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
			devices := writeFile(t, filepath.Join(dir, "devices.yaml"),
				fmt.Sprintf("- {id: %d, name: %s, type: smtp, properties: {address: 127.0.0.1, port: %d}}\n", i+1, name, port))
			res := run(t, nil, converter, devices)
			if res.Code != 0 {
				t.Fatalf("device2otel: %s", res)
			}
			override := fmt.Sprintf("exporters:\n%sservice:\n  pipelines:\n    logs/%s:\n      exporters: [file]\n", fileExporter(out), name)
			return []string{
				writeFile(t, filepath.Join(dir, "collector.yaml"), res.Stdout),
				writeFile(t, filepath.Join(dir, "override.yaml"), override),
			}
		})
		r := python(t, "--port", fmt.Sprint(c.port), "--mail-from", "ivy@example.com", "--rcpt", "ops@example.org", "--subject", "side by side "+name)
		if r.Result != "ok" {
			t.Fatalf("%s: %+v", name, r)
		}
		eq(t, name+": device.name", str(c.waitSubject("side by side "+name).Resource, "device.name"), name)
	}
}

// TestVersion: the distribution and the converter report the VERSION
// file's version, and so does the scope of every record.
func TestVersion(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(data))
	for _, bin := range []string{binary, filepath.Join(repoRoot, "bin", "device2otel")} {
		res := run(t, nil, bin, "--version")
		want := fmt.Sprintf("%s version %s", filepath.Base(bin), version)
		if res.Code != 0 || strings.TrimSpace(res.Stdout) != want {
			t.Errorf("%s --version: got %q (%s), want %q", bin, res.Stdout, res, want)
		}
	}
	c := startCollector(t, simpleConfig("version", ""))
	r := python(t, "--port", fmt.Sprint(c.port), "--mail-from", "ivy@example.com", "--rcpt", "ops@example.org", "--subject", "version")
	if r.Result != "ok" {
		t.Fatalf("%+v", r)
	}
	rec := c.waitSubject("version")
	eq(t, "scope version", rec.Scope.Version(), version)
}

// TestValidateLoadsFiles: `otelcol-smtp validate` refuses a config whose
// certificate, key, client CA or credentials file is missing or malformed,
// as the start would, naming the resolved path; with the files in the
// service root it passes.
func TestValidateLoadsFiles(t *testing.T) {
	dir := t.TempDir()
	certs := makeCerts(t, dir)
	garbage := writeFile(t, filepath.Join(dir, "garbage.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
	config := func(receiver string) string {
		return writeFile(t, filepath.Join(t.TempDir(), "config.yaml"), fmt.Sprintf(`receivers:
  smtp:
    address: 127.0.0.1
    port: 2600
    service_root: %q
%s
exporters:
  debug:
service:
  pipelines:
    logs:
      receivers: [smtp]
      exporters: [debug]
`, dir, indent(receiver, "    ")))
	}
	tls := func(cert, key, ca string) string {
		s := fmt.Sprintf("tls: {status: true, cert_name: %q, key_name: %q", cert, key)
		if ca != "" {
			s += fmt.Sprintf(", client_ca_file: %q", ca)
		}
		return s + "}"
	}
	tests := []struct {
		name, receiver, want string // want "" = valid
	}{
		{"good files", tls(filepath.Base(certs.Cert), filepath.Base(certs.Key), filepath.Base(certs.CA)), ""},
		{"missing certificate", tls("missing.crt", filepath.Base(certs.Key), ""), filepath.Join(dir, "missing.crt")},
		{"malformed certificate", tls(garbage, filepath.Base(certs.Key), ""), "garbage.pem"},
		{"missing client CA", tls(filepath.Base(certs.Cert), filepath.Base(certs.Key), "missing-ca.pem"), "missing-ca.pem"},
		{"missing credentials file", "credentials_file: users.htpasswd", filepath.Join(dir, "users.htpasswd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, nil, binary, "validate", "--config", config(tt.receiver))
			if tt.want == "" {
				if res.Code != 0 {
					t.Errorf("validate refused a good config: %s", res)
				}
				return
			}
			if res.Code == 0 || !strings.Contains(res.Stderr+res.Stdout, tt.want) {
				t.Errorf("validate: want a refusal naming %q, got %s", tt.want, res)
			}
		})
	}
}
