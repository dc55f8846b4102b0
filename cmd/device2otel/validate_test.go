package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// collectorBinary is the distribution built by `make build` (ocb). CI builds
// it before running the tests; locally the validation tests are skipped
// until it exists. OTELCOL_SMTP_BIN names another binary.
const collectorBinary = "../../bin/otelcol-smtp"

// Files in examples/ that are not collector configs of their own.
var notStandalone = map[string]string{
	"devices.yaml":        "a device file: validated through the converter",
	"exporters-file.yaml": "an override: validated merged with basic.yaml",
}

func collector(t *testing.T) string {
	t.Helper()
	path := collectorBinary
	if p := os.Getenv("OTELCOL_SMTP_BIN"); p != "" {
		path = p
	}
	bin, err := filepath.Abs(path)
	require.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s not found: build it with `make build` to validate the examples against the collector (CI builds it before the tests)", path)
	}
	return bin
}

// validate runs `otelcol-smtp validate` on the configs, merged in order.
func validate(t *testing.T, bin string, configs ...string) {
	t.Helper()
	args := []string{"validate"}
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "SMTP_PASSWORD=validate-test-secret")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", bin, strings.Join(args, " "), out)
}

// tlsOverride writes a throwaway certificate and key into a temp dir and an
// override config pointing service_root of every TLS receiver of config
// there. It returns the override's path, or "" when no receiver uses TLS.
func tlsOverride(t *testing.T, config string) string {
	t.Helper()
	data, err := os.ReadFile(config)
	require.NoError(t, err)
	var cfg struct {
		Receivers map[string]struct {
			TLS struct {
				Status   bool   `yaml:"status"`
				CertName string `yaml:"cert_name"`
				KeyName  string `yaml:"key_name"`
			} `yaml:"tls"`
		} `yaml:"receivers"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	dir := t.TempDir()
	override := map[string]any{}
	for _, id := range sortedReceiverIDs(cfg.Receivers) {
		r := cfg.Receivers[id]
		if !r.TLS.Status {
			continue
		}
		writeCert(t, filepath.Join(dir, r.TLS.CertName), filepath.Join(dir, r.TLS.KeyName))
		override[id] = map[string]any{"service_root": dir}
	}
	if len(override) == 0 {
		return ""
	}
	out, err := yaml.Marshal(map[string]any{"receivers": override})
	require.NoError(t, err)
	path := filepath.Join(dir, "tls-override.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	return path
}

func sortedReceiverIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// writeCert writes a self-signed certificate for localhost and its key.
func writeCert(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
}

func withTLS(t *testing.T, config string) []string {
	if o := tlsOverride(t, config); o != "" {
		return []string{config, o}
	}
	return []string{config}
}

func TestExamplesValidate(t *testing.T) {
	bin := collector(t)
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			if why, ok := notStandalone[name]; ok {
				t.Skip(why)
			}
			validate(t, bin, withTLS(t, f)...)
		})
	}
	t.Run("basic.yaml+exporters-file.yaml", func(t *testing.T) {
		validate(t, bin, filepath.Join(examplesDir, "basic.yaml"), filepath.Join(examplesDir, "exporters-file.yaml"))
	})
}

func TestConvertedDevicesValidate(t *testing.T) {
	bin := collector(t)
	code, out, errOut := convertArgs(t, "", filepath.Join(examplesDir, "devices.yaml"))
	require.Equal(t, 0, code, errOut)
	path := filepath.Join(t.TempDir(), "collector.yaml")
	require.NoError(t, os.WriteFile(path, []byte(out), 0o600))
	validate(t, bin, withTLS(t, path)...)

	// A placeholder for an unknown pipeline is a valid processor too.
	code, out, errOut = convertString(t, "- {id: 9, name: p, type: smtp, pipelines: [geo_enrich, spam_filter, email_parser], properties: {port: 2599, address: 127.0.0.1}}\n")
	require.Equal(t, 0, code, errOut)
	path = filepath.Join(t.TempDir(), "placeholder.yaml")
	require.NoError(t, os.WriteFile(path, []byte(out), 0o600))
	validate(t, bin, path)
}
