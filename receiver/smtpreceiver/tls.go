package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/config/configtls"
)

// aeadCipherSuites are the TLS 1.2 suites offered: forward secret and
// authenticated encryption only. TLS 1.3 suites are all AEAD and not
// configurable in Go.
var aeadCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// serviceRoot is where the device looks for its certificate and key.
func (cfg *Config) serviceRoot() (string, error) {
	if cfg.ServiceRoot != "" {
		return filepath.Abs(cfg.ServiceRoot)
	}
	return os.Getwd()
}

// resolve makes a file name from the config absolute: relative names are
// taken from the service root, absolute ones are used as they are.
func (cfg *Config) resolve(name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	root, err := cfg.serviceRoot()
	if err != nil {
		return "", fmt.Errorf("service_root: %w", err)
	}
	return filepath.Join(root, name), nil
}

// loadTLS builds the server TLS configuration and wraps it to count
// handshakes per connection.
func (r *smtpReceiver) loadTLS(ctx context.Context) (*tls.Config, error) {
	base, err := r.cfg.serverTLS(ctx)
	if err != nil {
		return nil, err
	}
	return countingTLSConfig(base), nil
}

// serverTLS loads the certificate, key and client CA bundle the config
// names, resolved against the service root, with the collector's configtls
// (reload, client CAs, versions). Start and Validate both use it.
func (cfg *Config) serverTLS(ctx context.Context) (*tls.Config, error) {
	t := cfg.TLS
	certPath, err := cfg.resolve(t.CertName)
	if err != nil {
		return nil, err
	}
	keyPath, err := cfg.resolve(t.KeyName)
	if err != nil {
		return nil, err
	}
	// Checked here, with the resolved paths in the message, because the
	// configtls error does not say where it looked.
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		return nil, fmt.Errorf("tls: cannot load certificate %q and key %q (cert_name/key_name are resolved against the service root, set service_root to change it): %w", certPath, keyPath, err)
	}

	sc := configtls.NewDefaultServerConfig()
	sc.CertFile = certPath
	sc.KeyFile = keyPath
	sc.MinVersion = t.MinVersion
	if sc.MinVersion == "" {
		sc.MinVersion = "1.2"
	}
	sc.CipherSuites = aeadCipherSuites
	sc.ReloadInterval = time.Duration(t.ReloadInterval) * time.Second
	if t.ClientCAFile != "" {
		if sc.ClientCAFile, err = cfg.resolve(t.ClientCAFile); err != nil {
			return nil, err
		}
		sc.ReloadClientCAFile = t.ReloadInterval > 0
	}
	base, err := sc.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls: %w (client_ca_file is resolved against the service root)", err)
	}
	return base, nil
}

// countingTLSConfig wraps base so that handshakes are counted per
// connection.
func countingTLSConfig(base *tls.Config) *tls.Config {
	// Each handshake gets its own copy of the configuration whose
	// VerifyConnection marks the connection, so failed handshakes can be
	// told from completed ones when the connection closes.
	return &tls.Config{
		MinVersion: base.MinVersion,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			cfg := base
			if base.GetConfigForClient != nil {
				c, err := base.GetConfigForClient(hello)
				if err != nil {
					return nil, err
				}
				if c != nil {
					cfg = c
				}
			}
			cfg = cfg.Clone()
			tc := trackedConnOf(hello.Conn)
			if tc == nil {
				return cfg, nil
			}
			tc.tlsPending()
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				tc.guard.tlsUp(cs)
				tc.tlsDone.Store(true)
				tc.w.tlsHandshake(true)
				return nil
			}
			return cfg, nil
		},
	}
}
