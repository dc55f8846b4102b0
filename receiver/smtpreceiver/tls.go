package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"go.opentelemetry.io/collector/config/configtls"
	"go.uber.org/zap"
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
	sc := configtls.NewDefaultServerConfig()
	sc.CertFile = certPath
	sc.KeyFile = keyPath
	// "" is TLS 1.2, configtls's default; Validate allows only 1.2 and 1.3.
	sc.MinVersion = t.MinVersion
	sc.CipherSuites = aeadCipherSuites
	sc.ReloadInterval = t.reloadInterval()
	where := fmt.Sprintf("cert_name %q, key_name %q", certPath, keyPath)
	if t.ClientCAFile != "" {
		if sc.ClientCAFile, err = cfg.resolve(t.ClientCAFile); err != nil {
			return nil, err
		}
		sc.ReloadClientCAFile = t.ReloadInterval > 0
		where += fmt.Sprintf(", client_ca_file %q", sc.ClientCAFile)
	}
	base, err := sc.LoadTLSConfig(ctx)
	if err != nil {
		// configtls does not always say which file it could not use.
		return nil, fmt.Errorf("tls: %w (%s; relative names are resolved against the service root, set service_root to change it)", err, where)
	}
	return base, nil
}

// countingTLSConfig wraps base so that the handshake of each connection is
// followed (tlsHandshake).
func countingTLSConfig(base *tls.Config) *tls.Config {
	// Each handshake gets its own copy of the configuration whose
	// VerifyConnection marks the connection, so failed handshakes can be
	// told from completed ones when the connection closes.
	// The handshake runs with the configuration GetConfigForClient returns
	// (base's versions and suites); the wrapper needs nothing else.
	return &tls.Config{
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
			tc.tlsPending(hello.ServerName)
			if get := cfg.GetCertificate; get != nil {
				cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
					cert, err := get(h)
					if err != nil {
						tc.hs.fail("certificate unavailable: " + err.Error())
						tc.w.r.secLog.warn(tc.ip, eventCertUnavailable,
							"TLS certificate or key cannot be loaded (after a reload?); TLS handshakes fail until it is fixed",
							zap.String("reason", err.Error()))
					}
					return cert, err
				}
			}
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				tc.hs.complete(tc.w)
				return nil
			}
			return cfg, nil
		},
	}
}

// tlsHandshake follows one connection's TLS handshake for the
// smtp_tls_handshakes metric and the security log: a success is counted as
// the handshake completes, a failure when a connection whose handshake had
// begun closes without completing it.
type tlsHandshake struct {
	mu         sync.Mutex
	started    bool
	done       bool
	serverName string
	failure    string
}

// begin marks a handshake in progress (a ClientHello was read).
func (h *tlsHandshake) begin(serverName string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started, h.serverName = true, serverName
}

// fail records why the handshake cannot succeed, for the log.
func (h *tlsHandshake) fail(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failure = reason
}

func (h *tlsHandshake) complete(w *worker) {
	h.mu.Lock()
	h.done = true
	h.mu.Unlock()
	w.tlsHandshake(true)
}

// closed counts and logs a handshake the connection closed in the middle
// of.
func (h *tlsHandshake) closed(w *worker, client netip.Addr) {
	h.mu.Lock()
	failed := h.started && !h.done
	reason, serverName := h.failure, h.serverName
	h.mu.Unlock()
	if !failed {
		return
	}
	if reason == "" {
		reason = "the handshake did not complete after the client hello (no common TLS version or cipher suite, the client refused the certificate, or it gave up)"
	}
	w.tlsHandshake(false)
	w.r.secLog.warn(client, eventTLSFailed, "TLS handshake failed",
		zap.String("reason", reason), zap.String("tls.server_name", serverName))
}
