package smtpreceiver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"golang.org/x/crypto/bcrypt"
)

// TestLoadHtpasswd: what go-htpasswd alone would take or word differently —
// comments, truncated bcrypt hashes, other hash schemes — is handled as the
// README promises, and no message quotes a hash.
func TestLoadHtpasswd(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	require.NoError(t, err)
	alice := "alice:" + string(hash)
	tests := []struct {
		name, content string
		wantErr       string // "" = loads, and alice/wonderland verifies
	}{
		{"comments, blank lines, CRLF, indentation", "# accounts\r\n\r\n  " + alice + "\r\n   # more\n", ""},
		{"only comments", "# no accounts\n\n", "no accounts"},
		{"md5 hash", alice + "\nbob:$apr1$abc$def\n", "1 of 2 lines are not user:bcrypt-hash; only bcrypt hashes are accepted"},
		{"truncated bcrypt hash", "bob:$2y$10$abc\n", "only bcrypt hashes are accepted"},
		{"no colon", "bob\n", "1 of 1 lines are not user:bcrypt-hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.htpasswd")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			h, err := loadHtpasswd(path)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), path)
				assert.NotContains(t, err.Error(), "$apr1$")
				assert.NotContains(t, err.Error(), "$2y$")
				return
			}
			require.NoError(t, err)
			assert.True(t, h.verify("alice", "wonderland"))
			assert.False(t, h.verify("alice", "toner"))
			assert.False(t, h.verify("mallory", "wonderland"), "an unknown user is refused, after a bcrypt comparison")
		})
	}
}

// A mechanism's own error text never reaches the client.
func TestMalformedAuthResponse(t *testing.T) {
	cfg, clientTLS := secureConfig(t, nil)
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	require.NoError(t, c.startTLS(clientTLS))
	c.expect("EHLO x", "250")
	for _, line := range []string{"AUTH PLAIN " + b64("no separators"), "AUTH PLAIN " + b64("a\x00b\x00c\x00d")} {
		got := c.cmd(line)
		assert.Equal(t, "501 5.5.2 Malformed AUTH response", got, line)
	}
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", "secret"), "235 ")
}
