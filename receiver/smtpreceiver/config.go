package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/smtpreceiver/smtpreceiver/internal/mailconv"
)

// Config is the device schema of the "SMTP push device", flattened onto a
// collector receiver block. Device fields keep the device's own names so a
// device definition moves over key for key; options the device does not have
// (marked "extension") sit beside them with defaults that keep the device's
// behaviour.
type Config struct {
	// Device identity: becomes resource attributes of every record.
	ID          int64    `mapstructure:"id"`
	Name        string   `mapstructure:"name"`
	Description string   `mapstructure:"description"`
	Tags        []string `mapstructure:"tags"`
	// Status false disables the device: the receiver starts no listener.
	Status bool `mapstructure:"status"`

	// Server.
	Address string `mapstructure:"address"`
	// Port is required, so nil means the config does not give it; 0 picks
	// a free port (for tests).
	Port     *int                `mapstructure:"port"`
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// Timeout is the idle timeout of a connection in seconds: the time a
	// client has to send one complete command line, and the time a write to
	// the client may take.
	Timeout int `mapstructure:"timeout"`

	// Performance.
	Reuse          bool `mapstructure:"reuse"`
	Workers        int  `mapstructure:"workers"`
	BufferSize     int  `mapstructure:"buffer_size"`
	StatsFrequency int  `mapstructure:"stats_frequency"`

	TLS TLSConfig `mapstructure:"tls"`

	// Extensions: limits.
	MaxMessageBytes int64 `mapstructure:"max_message_bytes"`
	MaxRecipients   int   `mapstructure:"max_recipients"`
	MaxLineLength   int   `mapstructure:"max_line_length"`
	DataTimeout     int   `mapstructure:"data_timeout"`
	// MinDataRate is the lowest transfer rate, in bytes per second over
	// each timeout window, a DATA/BDAT transfer may fall to before the
	// client gets 421 and is closed; 0 turns the check off.
	MinDataRate int `mapstructure:"min_data_rate"`
	// PipelineTimeout bounds, in seconds, how long a message waits for the
	// pipeline to accept it before the client gets 451 and retries.
	PipelineTimeout         int      `mapstructure:"pipeline_timeout"`
	MaxConnections          int      `mapstructure:"max_connections"`
	MaxConnectionsPerClient int      `mapstructure:"max_connections_per_client"`
	MaxAuthFailures         int      `mapstructure:"max_auth_failures"`
	TrustedNetworks         []string `mapstructure:"trusted_networks"`
	// AcceptedRecipients lists the RCPT TO addresses taken (exact, or
	// *@domain), case-insensitive; others get 550 5.1.1. Empty accepts all.
	AcceptedRecipients []string `mapstructure:"accepted_recipients"`
	// ProxyProtocol takes the client's address from the PROXY protocol
	// header of a trusted L4 balancer (proxy.go).
	ProxyProtocol ProxyProtocolConfig `mapstructure:"proxy_protocol"`

	// Extensions: server identity, security and sockets.
	// Domain is the name in the greeting; empty means the host name.
	Domain string `mapstructure:"domain"`
	// ServiceRoot is the directory relative TLS file names are resolved
	// against; empty means the collector's working directory.
	ServiceRoot string `mapstructure:"service_root"`
	// RequireTLS refuses MAIL before STARTTLS. Unset: true when TLS is on and
	// credentials are set.
	RequireTLS *bool `mapstructure:"require_tls"`
	// CredentialsFile names an htpasswd file of bcrypt hashes, for more than
	// one account.
	CredentialsFile string `mapstructure:"credentials_file"`
	// SocketReceiveBuffer sets SO_RCVBUF when > 0. Unset keeps the kernel's
	// autotuning, which is nearly always faster.
	SocketReceiveBuffer int `mapstructure:"socket_receive_buffer"`

	// Extensions: how a message becomes a record.
	BodyFormat                string `mapstructure:"body_format"`
	HTMLToText                bool   `mapstructure:"html_to_text"`
	MaxBodyBytes              int    `mapstructure:"max_body_bytes"`
	MaxHeaderBytes            int    `mapstructure:"max_header_bytes"`
	MaxMIMEDepth              int    `mapstructure:"max_mime_depth"`
	MaxMIMEParts              int    `mapstructure:"max_mime_parts"`
	IncludeAttachmentContent  bool   `mapstructure:"include_attachment_content"`
	MaxAttachmentContentBytes int    `mapstructure:"max_attachment_content_bytes"`

	// Extension: SPF, DKIM and DMARC results on every record.
	SenderAuth SenderAuthConfig `mapstructure:"sender_auth"`

	// Extension: reports mailed by machines become records (reports.go).
	Reports ReportsConfig `mapstructure:"reports"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// TLSConfig is the device's tls block plus extensions.
type TLSConfig struct {
	Status   bool   `mapstructure:"status"`
	CertName string `mapstructure:"cert_name"`
	KeyName  string `mapstructure:"key_name"`

	// Extensions.
	// Implicit serves TLS from the first byte (SMTPS, port 465 style)
	// instead of offering STARTTLS.
	Implicit bool `mapstructure:"implicit"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `mapstructure:"min_version"`
	// ReloadInterval, in seconds, re-reads the certificate and key; 0 never.
	ReloadInterval int `mapstructure:"reload_interval"`
	// ClientCAFile turns on mutual TLS: clients must present a certificate
	// signed by one of these CAs.
	ClientCAFile string `mapstructure:"client_ca_file"`

	// prevent unkeyed literal initialization
	_ struct{}
}

const (
	// minLineLength is RFC 5321's limit for a command line (4.5.3.1.4):
	// a server must accept lines this long, or clients are dropped at EHLO.
	minLineLength = 512
	// maxSeconds is the largest number of seconds a time.Duration holds.
	maxSeconds = math.MaxInt64 / int64(time.Second)
)

// maxMinDataRate (100 MiB/s) keeps min_data_rate below any rate a real
// network path is sure to reach.
const maxMinDataRate = 100 << 20

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; each error names the field and the fix.
func (cfg *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	switch {
	case cfg.Port == nil:
		add("port", "is required; set it to the TCP port to listen on, e.g. port: 2525")
	case *cfg.Port < 0 || *cfg.Port > 65535:
		add("port", "%d is out of range; it must be between 1 and 65535 (0 picks a free port)", *cfg.Port)
	}
	if cfg.Address == "" {
		add("address", `must not be empty; use "0.0.0.0" for all interfaces or "127.0.0.1" for local only`)
	} else if strings.Contains(cfg.Address, ":") && !strings.HasPrefix(cfg.Address, "[") {
		if _, err := netip.ParseAddr(cfg.Address); err != nil {
			add("address", "must be a host name or IP address without a port (the port goes in port), got %q", cfg.Address)
		}
	}
	positive := []struct {
		field string
		value int64
		fix   string
	}{
		{"timeout", int64(cfg.Timeout), "seconds, e.g. timeout: 15"},
		{"workers", int64(cfg.Workers), "e.g. workers: 4"},
		{"buffer_size", int64(cfg.BufferSize), "bytes, e.g. buffer_size: 9000"},
		{"stats_frequency", int64(cfg.StatsFrequency), "seconds, e.g. stats_frequency: 300"},
		{"max_message_bytes", cfg.MaxMessageBytes, "bytes, e.g. max_message_bytes: 26214400"},
		{"max_recipients", int64(cfg.MaxRecipients), "e.g. max_recipients: 100"},
		{"max_line_length", int64(cfg.MaxLineLength), "bytes, e.g. max_line_length: 4096"},
		{"data_timeout", int64(cfg.DataTimeout), "seconds, e.g. data_timeout: 600"},
		{"pipeline_timeout", int64(cfg.PipelineTimeout), "seconds, e.g. pipeline_timeout: 60"},
		{"max_connections", int64(cfg.MaxConnections), "e.g. max_connections: 1000"},
		{"max_connections_per_client", int64(cfg.MaxConnectionsPerClient), "e.g. max_connections_per_client: 50"},
		{"max_auth_failures", int64(cfg.MaxAuthFailures), "e.g. max_auth_failures: 3"},
		{"max_body_bytes", int64(cfg.MaxBodyBytes), "bytes, e.g. max_body_bytes: 4194304"},
		{"max_header_bytes", int64(cfg.MaxHeaderBytes), "bytes, e.g. max_header_bytes: 1048576"},
		{"max_mime_depth", int64(cfg.MaxMIMEDepth), "e.g. max_mime_depth: 20"},
		{"max_mime_parts", int64(cfg.MaxMIMEParts), "e.g. max_mime_parts: 500"},
		{"max_attachment_content_bytes", int64(cfg.MaxAttachmentContentBytes), "bytes, e.g. max_attachment_content_bytes: 1048576"},
	}
	for _, p := range positive {
		if p.value <= 0 {
			add(p.field, "must be greater than 0, got %d; set it in %s", p.value, p.fix)
		}
	}
	if cfg.BufferSize > 0 && cfg.BufferSize < 512 {
		add("buffer_size", "must be at least 512 bytes, got %d", cfg.BufferSize)
	}
	if cfg.MinDataRate < 0 || cfg.MinDataRate > maxMinDataRate {
		add("min_data_rate", "must be between 0 (no minimum) and %d bytes per second, got %d; e.g. min_data_rate: 256", maxMinDataRate, cfg.MinDataRate)
	}
	if cfg.MaxLineLength > 0 && cfg.MaxLineLength < minLineLength {
		add("max_line_length", "must be at least %d bytes (RFC 5321's command line length; shorter lines drop clients after EHLO), got %d", minLineLength, cfg.MaxLineLength)
	}
	for _, s := range []struct {
		field string
		value int
	}{
		{"timeout", cfg.Timeout}, {"data_timeout", cfg.DataTimeout}, {"pipeline_timeout", cfg.PipelineTimeout},
		{"stats_frequency", cfg.StatsFrequency}, {"tls.reload_interval", cfg.TLS.ReloadInterval},
		{"proxy_protocol.timeout", cfg.ProxyProtocol.Timeout},
	} {
		if int64(s.value) > maxSeconds {
			add(s.field, "must be at most %d seconds, got %d", maxSeconds, s.value)
		}
	}
	if cfg.Domain != "" && !isDomain(cfg.Domain) {
		add("domain", "must be a host name such as mx.example.com (letters, digits, hyphens, dots) or an address literal such as [192.0.2.1], got %q", cfg.Domain)
	}
	if cfg.SocketReceiveBuffer < 0 {
		add("socket_receive_buffer", "must be 0 (kernel autotuning) or a size in bytes, got %d", cfg.SocketReceiveBuffer)
	}
	if cfg.MaxConnectionsPerClient > cfg.MaxConnections && cfg.MaxConnections > 0 {
		add("max_connections_per_client", "must not exceed max_connections (%d), got %d", cfg.MaxConnections, cfg.MaxConnectionsPerClient)
	}
	for i, n := range cfg.TrustedNetworks {
		if _, err := parseNetwork(n); err != nil {
			add(fmt.Sprintf("trusted_networks[%d]", i), "%q is not a CIDR or IP address, e.g. 10.0.0.0/8 or 192.0.2.7", n)
		}
	}
	for i, p := range cfg.AcceptedRecipients {
		if err := validateRecipientPattern(p); err != nil {
			add(fmt.Sprintf("accepted_recipients[%d]", i), "%v", err)
		}
	}
	switch {
	case cfg.Username != "" && cfg.Password == "":
		add("password", "is required when username is set; set both to turn on AUTH, or neither")
	case cfg.Username == "" && cfg.Password != "":
		add("username", "is required when password is set; set both to turn on AUTH, or neither")
	}
	if cfg.CredentialsFile != "" && cfg.Username != "" {
		add("credentials_file", "cannot be combined with username/password; put every account in the file")
	}
	switch cfg.BodyFormat {
	case mailconv.BodyFormatMap, mailconv.BodyFormatJSON:
	default:
		add("body_format", `must be "map" or "json", got %q`, cfg.BodyFormat)
	}
	if err := cfg.TLS.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Reports.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.ProxyProtocol.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.SenderAuth.validate(cfg.TrustedNetworks); err != nil {
		errs = append(errs, err)
	}
	if cfg.RequireTLS != nil && *cfg.RequireTLS && !cfg.TLS.Status {
		add("require_tls", "needs tls.status: true (there is no TLS to require); turn TLS on or remove require_tls")
	}
	if len(errs) == 0 {
		errs = append(errs, cfg.checkFiles())
	}
	return errors.Join(errs...)
}

// FileError is a file named by the config (certificate, key, client CA
// bundle, credentials file) that cannot be read or parsed here. Its message
// names the field and the path. A tool checking a config meant for another
// machine (cmd/device2otel) can tell these errors from the others.
type FileError struct {
	Field string
	Err   error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// checkFiles loads the files the config names with the code Start uses, so
// that `otelcol-smtp validate` finds a missing or malformed one too. A
// disabled device starts nothing and loads nothing.
func (cfg *Config) checkFiles() error {
	if !cfg.Status {
		return nil
	}
	var errs []error
	if cfg.CredentialsFile != "" {
		if _, err := loadCredentials(cfg); err != nil {
			errs = append(errs, &FileError{Field: "credentials_file", Err: err})
		}
	}
	if cfg.TLS.Status {
		if _, err := cfg.serverTLS(context.Background()); err != nil {
			errs = append(errs, &FileError{Field: "tls", Err: err})
		}
	}
	return errors.Join(errs...)
}

// isDomain accepts a host name (RFC 1123 labels) or an address literal
// ([192.0.2.1], [IPv6:2001:db8::1]): what may follow 220 and 250 in the
// greeting and the EHLO reply, and nothing that could end the reply line.
func isDomain(s string) bool {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return false
		}
		if v6, isV6 := strings.CutPrefix(inner, "IPv6:"); isV6 {
			a, err := netip.ParseAddr(v6)
			return err == nil && a.Is6() && a.Zone() == ""
		}
		a, err := netip.ParseAddr(inner)
		return err == nil && a.Is4()
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !isHostLabel(label) {
			return false
		}
	}
	return true
}

func isHostLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (t *TLSConfig) validate() error {
	var errs []error
	if t.Status {
		if t.CertName == "" {
			errs = append(errs, errors.New("tls.cert_name: is required when tls.status is true; name the certificate file (PEM) in the service root, e.g. cert_name: smtp.crt"))
		}
		if t.KeyName == "" {
			errs = append(errs, errors.New("tls.key_name: is required when tls.status is true; name the private key file (PEM) in the service root, e.g. key_name: smtp.key"))
		}
	} else if t.Implicit {
		errs = append(errs, errors.New("tls.implicit: needs tls.status: true with cert_name and key_name"))
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("tls.min_version: must be \"1.2\" or \"1.3\", got %q (TLS 1.0 and 1.1 are not offered)", t.MinVersion))
	}
	if t.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("tls.reload_interval: must be 0 (never) or a number of seconds, got %d", t.ReloadInterval))
	}
	return errors.Join(errs...)
}

// requireTLS says whether MAIL must wait for STARTTLS.
func (cfg *Config) requireTLS() bool {
	if cfg.RequireTLS != nil {
		return *cfg.RequireTLS
	}
	return cfg.TLS.Status && cfg.authEnabled()
}

// authEnabled says whether clients must authenticate before MAIL.
func (cfg *Config) authEnabled() bool {
	return cfg.Username != "" || cfg.CredentialsFile != ""
}

// parseNetwork accepts a CIDR or a lone IP address (a /32 or /128).
func parseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// listenAddress joins address and port for net.Listen.
func (cfg *Config) listenAddress() string {
	return net.JoinHostPort(strings.Trim(cfg.Address, "[]"), strconv.Itoa(cfg.port()))
}

// port is the configured port; a config without one (only possible when
// Validate was not run) listens on a free port.
func (cfg *Config) port() int {
	if cfg.Port == nil {
		return 0
	}
	return *cfg.Port
}

// The device schema gives times in whole seconds. They become durations
// here and only here; Validate has checked that each fits a time.Duration.

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// idleTimeout is timeout: how long a client has for one command line, and
// a write to the client.
func (cfg *Config) idleTimeout() time.Duration { return seconds(cfg.Timeout) }

// dataTimeout bounds one whole DATA/BDAT transfer.
func (cfg *Config) dataTimeout() time.Duration { return seconds(cfg.DataTimeout) }

// pipelineTimeout bounds how long a message waits for the pipeline.
func (cfg *Config) pipelineTimeout() time.Duration { return seconds(cfg.PipelineTimeout) }

// statsInterval is how often the stats line is logged.
func (cfg *Config) statsInterval() time.Duration { return seconds(cfg.StatsFrequency) }

// reloadInterval is how often the certificate and key are re-read; 0 never.
func (t *TLSConfig) reloadInterval() time.Duration { return seconds(t.ReloadInterval) }

// headerTimeout is how long a trusted proxy has to send its PROXY header.
func (p *ProxyProtocolConfig) headerTimeout() time.Duration { return seconds(p.Timeout) }
