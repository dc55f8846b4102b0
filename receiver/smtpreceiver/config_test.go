package smtpreceiver

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

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
	}{
		{
			id:   component.NewID(metadata.Type),
			want: defaults(func(c *Config) { c.Port = 2525 }),
		},
		{
			id:   component.NewIDWithName(metadata.Type, "basic_smtp"),
			want: defaults(func(c *Config) { c.ID = 1; c.Address = "0.0.0.0"; c.Port = 25 }),
		},
		{
			id: component.NewIDWithName(metadata.Type, "secure_smtp"),
			want: defaults(func(c *Config) {
				c.ID, c.Name, c.Description, c.Tags = 2, "secure_smtp", "Secure submission", []string{"mail", "prod"}
				c.Port, c.Username, c.Password, c.Timeout = 587, "mailuser", "secret", 30
				c.TLS.Status, c.TLS.CertName, c.TLS.KeyName = true, "smtp.crt", "smtp.key"
			}),
		},
		{
			id: component.NewIDWithName(metadata.Type, "performant_smtp"),
			want: defaults(func(c *Config) {
				c.ID, c.Port, c.Timeout = 3, 25, 60
				c.Reuse, c.Workers, c.BufferSize, c.StatsFrequency = true, 4, 32768, 60
			}),
		},
		{
			id: component.NewIDWithName(metadata.Type, "extensions"),
			want: defaults(func(c *Config) {
				c.Port, c.Status = 2525, false
				c.MaxMessageBytes, c.MaxRecipients = 1048576, 10
				c.MaxConnections, c.MaxConnectionsPerClient, c.MaxAuthFailures = 20, 5, 2
				c.TrustedNetworks = []string{"10.0.0.0/8", "192.0.2.7"}
				c.Domain, c.ServiceRoot, c.RequireTLS = "mx.example.com", "/etc/smtp", &yes
				c.BodyFormat, c.IncludeAttachmentContent = BodyFormatJSON, true
				c.TLS = TLSConfig{
					Status: true, CertName: "smtp.crt", KeyName: "smtp.key",
					Implicit: true, MinVersion: "1.3", ReloadInterval: 60, ClientCAFile: "ca.crt",
				}
			}),
		},
		{id: component.NewIDWithName(metadata.Type, "no_port"), wantErr: []string{"port: is required"}},
		{id: component.NewIDWithName(metadata.Type, "port_range"), wantErr: []string{"port: must be between 1 and 65535", "got 70000"}},
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
	cm := confmapFromMap(map[string]any{"port": 25, "prot": 26})
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

func confmapFromMap(m map[string]any) *confmap.Conf { return confmap.NewFromStringMap(m) }
