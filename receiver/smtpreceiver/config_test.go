package smtpreceiver

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"golang.org/x/crypto/bcrypt"

	"github.com/smtpreceiver/smtpreceiver/internal/mailconv"
	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("..", "..", "testdata", "config.yaml"))
	require.NoError(t, err)

	defaults := func(mod func(*Config)) *Config {
		cfg := createDefaultConfig().(*Config)
		mod(cfg)
		return cfg
	}
	yes := true

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr []string // substrings the validation error must contain
		// wantFileError: decodes to want, and Validate then reports the
		// certificate files it names, which do not exist here.
		wantFileError bool
	}{
		{
			id:   component.NewID(metadata.Type),
			want: defaults(func(c *Config) { c.Port = new(2525) }),
		},
		{
			id:   component.NewIDWithName(metadata.Type, "basic_smtp"),
			want: defaults(func(c *Config) { c.ID = 1; c.Address = "0.0.0.0"; c.Port = new(25) }),
		},
		{
			id: component.NewIDWithName(metadata.Type, "secure_smtp"),
			want: defaults(func(c *Config) {
				c.ID, c.Name, c.Description, c.Tags = 2, "secure_smtp", "Secure submission", []string{"mail", "prod"}
				c.Port, c.Username, c.Password, c.Timeout = new(587), "mailuser", "secret", 30
				c.TLS.Status, c.TLS.CertName, c.TLS.KeyName = true, "smtp.crt", "smtp.key"
			}),
			wantFileError: true,
		},
		{
			id: component.NewIDWithName(metadata.Type, "performant_smtp"),
			want: defaults(func(c *Config) {
				c.ID, c.Port, c.Timeout = 3, new(25), 60
				c.Reuse, c.Workers, c.BufferSize, c.StatsFrequency = true, 4, 32768, 60
			}),
		},
		{
			id: component.NewIDWithName(metadata.Type, "extensions"),
			want: defaults(func(c *Config) {
				c.Port, c.Status = new(2525), false
				c.MaxMessageBytes, c.MaxRecipients = 1048576, 10
				c.MaxConnections, c.MaxConnectionsPerClient, c.MaxAuthFailures = 20, 5, 2
				c.TrustedNetworks = []string{"10.0.0.0/8", "192.0.2.7"}
				c.Domain, c.ServiceRoot, c.RequireTLS = "mx.example.com", "/etc/smtp", &yes
				c.BodyFormat, c.IncludeAttachmentContent = mailconv.BodyFormatJSON, true
				c.TLS = TLSConfig{
					Status: true, CertName: "smtp.crt", KeyName: "smtp.key",
					Implicit: true, MinVersion: "1.3", ReloadInterval: 60, ClientCAFile: "ca.crt",
				}
			}),
		},
		{id: component.NewIDWithName(metadata.Type, "no_port"), wantErr: []string{"port: is required"}},
		{id: component.NewIDWithName(metadata.Type, "port_range"), wantErr: []string{"port: 70000 is out of range; it must be between 1 and 65535"}},
		{
			id: component.NewIDWithName(metadata.Type, "negative_numbers"),
			wantErr: []string{
				"timeout: must be greater than 0, got 0",
				"workers: must be greater than 0, got -1",
				"buffer_size: must be greater than 0",
				"stats_frequency: must be greater than 0",
			},
		},
		{id: component.NewIDWithName(metadata.Type, "user_without_password"), wantErr: []string{"password: is required when username is set"}},
		{id: component.NewIDWithName(metadata.Type, "password_without_user"), wantErr: []string{"username: is required when password is set"}},
		{
			id:      component.NewIDWithName(metadata.Type, "tls_without_files"),
			wantErr: []string{"tls.cert_name: is required when tls.status is true", "tls.key_name: is required when tls.status is true"},
		},
		{id: component.NewIDWithName(metadata.Type, "bad_body_format"), wantErr: []string{`body_format: must be "map" or "json", got "xml"`}},
		{id: component.NewIDWithName(metadata.Type, "bad_network"), wantErr: []string{`trusted_networks[0]: "not-a-net" is not a CIDR`}},
		{id: component.NewIDWithName(metadata.Type, "address_with_port"), wantErr: []string{"address: must be a host name or IP address without a port"}},
		{id: component.NewIDWithName(metadata.Type, "require_tls_without_tls"), wantErr: []string{"require_tls: needs tls.status: true"}},
		{id: component.NewIDWithName(metadata.Type, "bad_min_version"), wantErr: []string{`tls.min_version: must be "1.2" or "1.3", got "1.0"`}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantFileError {
				var fe *FileError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, "tls", fe.Field)
				assert.Equal(t, tt.want, cfg)
				return
			}
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					assert.Contains(t, err.Error(), want)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	cm := confmap.NewFromStringMap(map[string]any{"port": 25, "prot": 26})
	err := cm.Unmarshal(createDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "prot")
}

func TestRequireTLSDefault(t *testing.T) {
	no := false
	tests := []struct {
		name string
		mod  func(*Config)
		want bool
	}{
		{"plain", func(*Config) {}, false},
		{"tls without auth", func(c *Config) { c.TLS.Status = true }, false},
		{"auth without tls", func(c *Config) { c.Username, c.Password = "u", "p" }, false},
		{"tls and auth", func(c *Config) { c.TLS.Status = true; c.Username, c.Password = "u", "p" }, true},
		{"explicitly off", func(c *Config) { c.TLS.Status = true; c.Username, c.Password = "u", "p"; c.RequireTLS = &no }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tt.mod(cfg)
			assert.Equal(t, tt.want, cfg.requireTLS())
		})
	}
}

// decodeYAML decodes a receiver block written in YAML the way the
// collector does (YAML provider types, then Config.Unmarshal).
func decodeYAML(t *testing.T, doc string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "receiver.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	cm, err := confmaptest.LoadConf(path)
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	return cfg, cm.Unmarshal(cfg)
}

func TestUnmarshalNamesFieldAndFix(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"fraction in port", "port: 3700.5", []string{"port: must be a whole number, got 3700.5"}},
		{"fraction in timeout", "port: 25\ntimeout: 1.5", []string{"timeout: must be a whole number, got 1.5"}},
		{"fraction in tls block", "port: 25\ntls: {reload_interval: 0.5}", []string{"tls.reload_interval: must be a whole number, got 0.5"}},
		{"quoted number", `port: "2525"`, []string{`port: expected a whole number, got the string "2525"; remove the quotes`}},
		{"word for a number", "port: 25\nworkers: many", []string{`workers: expected a whole number, got the string "many"`}},
		{"above int64 (uint64 in YAML)", "port: 18446744073709551615", []string{"port: 18446744073709551615 is out of range"}},
		{"above uint64 (float in YAML)", "port: 25\nmax_message_bytes: 99999999999999999999", []string{"max_message_bytes: 100000000000000000000 is out of range"}},
		{"string for a bool", "port: 25\nreuse: \"yes\"", []string{`reuse: expected true or false, got the string "yes"; write true or false without quotes`}},
		{"mapping for a list", "port: 25\ntags: {a: b}", []string{"tags: expected a list of strings, got a mapping"}},
		{"list inside a list", "port: 25\ntrusted_networks: [[10.0.0.0/8]]", []string{"trusted_networks[0]: expected a string, got a list"}},
		{"scalar for the tls block", "port: 25\ntls: true", []string{"tls: expected a mapping of its fields, got the boolean true"}},
		{"number for a string", "port: 25\npassword: 12345\nusername: u", []string{"password: expected a string, got the number 12345; put the value in quotes"}},
		{"unknown field", "port: 25\nprot: 26", []string{"unknown field prot in the receiver"}},
		{"unknown tls field", "port: 25\ntls: {cert: a}", []string{"unknown field cert in tls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeYAML(t, tt.yaml)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "unconvertible", "raw mapstructure text")
			assert.NotContains(t, err.Error(), "-9223372036854775808", "a huge number reported as negative")
		})
	}
}

func TestUnmarshalAcceptsWholeNumbersAndStrings(t *testing.T) {
	cfg, err := decodeYAML(t, `
port: 2525.0
timeout: 30
max_message_bytes: 9223372036854775807
password: "12345"
username: "007"
tags: a,b
domain: mx.example.com
`)
	require.NoError(t, err)
	assert.Equal(t, 2525, *cfg.Port)
	assert.Equal(t, 30, cfg.Timeout)
	assert.Equal(t, int64(9223372036854775807), cfg.MaxMessageBytes)
	assert.Equal(t, "12345", string(cfg.Password))
	assert.Equal(t, []string{"a", "b"}, cfg.Tags)
}

func TestValidatePortRange(t *testing.T) {
	for _, port := range []int{-1, 65536, 1 << 40} {
		cfg := testConfig(func(c *Config) { c.Port = new(port) })
		err := cfg.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("port: %d is out of range", port))
		assert.NotContains(t, err.Error(), "required")
	}
	cfg := testConfig(func(c *Config) { c.Port = nil })
	assert.ErrorContains(t, cfg.Validate(), "port: is required")
}

func TestValidateDomain(t *testing.T) {
	tests := []struct {
		domain string
		ok     bool
	}{
		{"mx.example.com", true},
		{"mx.example.com.", true},
		{"localhost", true},
		{"mail-1.example.org", true},
		{"[192.0.2.1]", true},
		{"[IPv6:2001:db8::1]", true},
		{"mx.example.com\r\n250 injected", false},
		{"mx.example.com 250", false},
		{"-mx.example.com", false},
		{"mx..example.com", false},
		{"mx_1.example.com", false},
		{strings.Repeat("a", 64) + ".example.com", false},
		{strings.Repeat("abcdefg.", 32) + "com", false},
		{"[192.0.2.1", false},
		{"[2001:db8::1]", false},
		{"[IPv6:192.0.2.1]", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.domain), func(t *testing.T) {
			err := testConfig(func(c *Config) { c.Domain = tt.domain }).Validate()
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "domain: must be a host name")
		})
	}
}

func TestValidateLimits(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" for valid
	}{
		{"line length below RFC 5321", func(c *Config) { c.MaxLineLength = 10 }, "max_line_length: must be at least 512"},
		{"line length 511", func(c *Config) { c.MaxLineLength = 511 }, "max_line_length: must be at least 512"},
		{"line length 512", func(c *Config) { c.MaxLineLength = 512 }, ""},
		{"timeout beyond a Duration", func(c *Config) { c.Timeout = math.MaxInt64 }, "timeout: must be at most 9223372036 seconds"},
		{"reload beyond a Duration", func(c *Config) { c.TLS.ReloadInterval = math.MaxInt64 }, "tls.reload_interval: must be at most"},
		{"timeout at the Duration limit", func(c *Config) { c.Timeout = 9223372036 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := testConfig(tt.mod).Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// TestValidateLoadsFiles: `otelcol-smtp validate` must catch what Start
// would fail on, with names resolved against service_root as Start does.
func TestValidateLoadsFiles(t *testing.T) {
	root := t.TempDir()
	testCert(t, root, "smtp.crt", "smtp.key")
	testCert(t, root, "other.crt", "other.key")
	testCert(t, root, "ca.crt", "ca.key")
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(content), 0o600))
	}
	write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
	write("empty.htpasswd", "# no accounts\n")
	write("md5.htpasswd", "bob:$apr1$abc$def\n")
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	write("users.htpasswd", "alice:"+string(hash)+"\n")

	withTLS := func(cert, key string, more ...func(*Config)) func(*Config) {
		return func(c *Config) {
			c.ServiceRoot = root
			c.TLS.Status, c.TLS.CertName, c.TLS.KeyName = true, cert, key
			for _, m := range more {
				m(c)
			}
		}
	}
	withCreds := func(file string) func(*Config) {
		return func(c *Config) { c.ServiceRoot, c.CredentialsFile = root, file }
	}
	clientCA := func(file string) func(*Config) { return func(c *Config) { c.TLS.ClientCAFile = file } }
	tests := []struct {
		name      string
		mod       func(*Config)
		field     string // "" for valid
		wantInErr string
	}{
		{"good certificate and key", withTLS("smtp.crt", "smtp.key"), "", ""},
		{"absolute paths", withTLS(filepath.Join(root, "smtp.crt"), filepath.Join(root, "smtp.key")), "", ""},
		{"missing certificate", withTLS("missing.crt", "smtp.key"), "tls", filepath.Join(root, "missing.crt")},
		{"missing key", withTLS("smtp.crt", "missing.key"), "tls", filepath.Join(root, "missing.key")},
		{"malformed certificate", withTLS("garbage.pem", "smtp.key"), "tls", "garbage.pem"},
		{"key of another certificate", withTLS("smtp.crt", "other.key"), "tls", "private key does not match"},
		{"good client CA", withTLS("smtp.crt", "smtp.key", clientCA("ca.crt")), "", ""},
		{"missing client CA", withTLS("smtp.crt", "smtp.key", clientCA("missing-ca.crt")), "tls", "missing-ca.crt"},
		{"malformed client CA", withTLS("smtp.crt", "smtp.key", clientCA("garbage.pem")), "tls", "client_ca_file"},
		{"good credentials file", withCreds("users.htpasswd"), "", ""},
		{"missing credentials file", withCreds("missing.htpasswd"), "credentials_file", filepath.Join(root, "missing.htpasswd")},
		{"credentials file without accounts", withCreds("empty.htpasswd"), "credentials_file", "no accounts"},
		{"credentials file not bcrypt", withCreds("md5.htpasswd"), "credentials_file", "only bcrypt"},
		{"disabled device loads nothing", withTLS("missing.crt", "missing.key", func(c *Config) { c.Status = false }), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := testConfig(tt.mod).Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var fe *FileError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
			assert.Contains(t, err.Error(), tt.wantInErr)
		})
	}
}
