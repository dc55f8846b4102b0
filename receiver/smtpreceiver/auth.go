package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/tg123/go-htpasswd"
	"golang.org/x/crypto/bcrypt"
)

// credentials checks a user name and password.
type credentials interface {
	verify(username, password string) bool
}

func loadCredentials(cfg *Config) (credentials, error) {
	switch {
	case cfg.CredentialsFile != "":
		path, err := cfg.resolve(cfg.CredentialsFile)
		if err != nil {
			return nil, err
		}
		return loadHtpasswd(path)
	case cfg.Username != "":
		return newSingleAccount(cfg.Username, string(cfg.Password)), nil
	}
	return nil, nil
}

// singleAccount is the device's username/password pair. Both sides are
// hashed first so the comparison takes the same time whatever the lengths.
type singleAccount struct {
	user, pass [sha256.Size]byte
}

func newSingleAccount(user, pass string) *singleAccount {
	return &singleAccount{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass))}
}

func (a *singleAccount) verify(username, password string) bool {
	u := sha256.Sum256([]byte(username))
	p := sha256.Sum256([]byte(password))
	userOK := subtle.ConstantTimeCompare(u[:], a.user[:])
	passOK := subtle.ConstantTimeCompare(p[:], a.pass[:])
	return userOK&passOK == 1
}

// htpasswdFile is an htpasswd file of bcrypt hashes, as written by
// `htpasswd -B` (Apache) or any bcrypt tool, read by go-htpasswd with only
// a bcrypt parser enabled.
type htpasswdFile struct {
	file *htpasswd.File
	// dummy is compared against for unknown users, so that a wrong user
	// name costs as much time as a wrong password (go-htpasswd's Match
	// answers an unknown user at once).
	dummy []byte
}

// errNotBcrypt marks a line whose hash is no bcrypt hash. go-htpasswd's own
// message for it would quote the hash.
var errNotBcrypt = errors.New("not a bcrypt hash")

func loadHtpasswd(path string) (*htpasswdFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials_file: cannot read %q (relative names are resolved against the service root): %w", path, err)
	}
	h := &htpasswdFile{}
	bcryptOnly := func(hash string) (htpasswd.EncodedPasswd, error) {
		// go-htpasswd's parser looks at the prefix only; a hash bcrypt
		// cannot use is refused here, not found out at every login.
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, errNotBcrypt
		}
		if h.dummy == nil {
			h.dummy = []byte(hash)
		}
		return htpasswd.AcceptBcrypt(hash)
	}
	lines, accounts := accountLines(data)
	bad := 0
	h.file, err = htpasswd.NewFromReader(lines, []htpasswd.PasswdParser{bcryptOnly}, func(error) { bad++ })
	switch {
	case err != nil:
		return nil, fmt.Errorf("credentials_file %q: %w", path, err)
	case bad > 0:
		return nil, fmt.Errorf("credentials_file %q: %d of %d lines are not user:bcrypt-hash; only bcrypt hashes are accepted (htpasswd -B)", path, bad, accounts)
	case accounts == 0:
		return nil, fmt.Errorf("credentials_file %q: no accounts", path)
	}
	return h, nil
}

// accountLines drops comment lines (those starting with "#", as Apache's
// mod_authn_file does), which go-htpasswd would take for malformed
// accounts, and counts the lines left that are not blank.
func accountLines(data []byte) (io.Reader, int) {
	var kept bytes.Buffer
	accounts := 0
	for line := range bytes.Lines(data) {
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 || trimmed[0] == '#' {
			continue
		}
		accounts++
		kept.Write(trimmed)
		kept.WriteByte('\n')
	}
	return &kept, accounts
}

func (h *htpasswdFile) verify(username, password string) bool {
	if !h.file.Exists(username) {
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
		return false
	}
	return h.file.Match(username, password)
}

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// lacks and which many devices and older clients still use: the server
// asks "Username:" then "Password:", each answered in base64.
type loginServer struct {
	step         int
	username     string
	authenticate func(username, password string) error
}

var errUnexpectedLoginStep = errors.New("unexpected LOGIN response")

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if response != nil { // initial response: AUTH LOGIN <username>
			l.username = string(response)
			l.step = 2
			return []byte("Password:"), false, nil
		}
		l.step = 1
		return []byte("Username:"), false, nil
	case 1:
		l.username = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.authenticate(l.username, string(response))
	}
	return nil, false, errUnexpectedLoginStep
}

var _ sasl.Server = (*loginServer)(nil)

// errAuthMalformed answers an AUTH exchange the mechanism could not read
// (bad base64 is answered by go-smtp itself).
var errAuthMalformed = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed AUTH response"}

// plainAuthErrors keeps a mechanism's own error texts ("sasl: invalid
// response") from the client: go-smtp sends the text of any error that is
// not an SMTPError.
type plainAuthErrors struct{ sasl.Server }

func (p plainAuthErrors) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := p.Server.Next(response)
	if err != nil {
		if _, ok := err.(*smtp.SMTPError); !ok {
			err = errAuthMalformed
		}
	}
	return challenge, done, err
}

// authThrottle slows down clients that keep failing to authenticate: each
// recent failure from an address adds a second before the next answer to
// it, up to maxAuthDelay. Trusted networks are exempt.
type authThrottle struct {
	trusted func(netip.Addr) bool

	mu       sync.Mutex
	failures map[netip.Addr]*failureCount
}

type failureCount struct {
	n    int
	last time.Time
}

const (
	authFailureStep   = time.Second
	maxAuthDelay      = 5 * time.Second
	authFailureMemory = 10 * time.Minute
	maxTrackedClients = 10000
)

func newAuthThrottle(trusted func(netip.Addr) bool) *authThrottle {
	return &authThrottle{trusted: trusted, failures: make(map[netip.Addr]*failureCount)}
}

// failed records a failure and returns how long to wait before replying.
func (t *authThrottle) failed(ip netip.Addr) time.Duration {
	if t.trusted(ip) {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	fc := t.failures[ip]
	if fc == nil || now.Sub(fc.last) > authFailureMemory {
		if len(t.failures) >= maxTrackedClients {
			t.forgetOld(now)
		}
		fc = &failureCount{}
		t.failures[ip] = fc
	}
	fc.n++
	fc.last = now
	return min(time.Duration(fc.n)*authFailureStep, maxAuthDelay)
}

func (t *authThrottle) forgetOld(now time.Time) {
	for ip, fc := range t.failures {
		if now.Sub(fc.last) > authFailureMemory {
			delete(t.failures, ip)
		}
	}
	if len(t.failures) >= maxTrackedClients {
		clear(t.failures) // under attack from very many addresses: start over
	}
}
