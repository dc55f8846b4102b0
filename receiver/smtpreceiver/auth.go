package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
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

// htpasswd holds bcrypt hashes by user name, as written by
// `htpasswd -B` (Apache) or any bcrypt tool.
type htpasswd struct {
	hashes map[string][]byte
	// dummy is compared against for unknown users, so that a wrong user
	// name costs as much time as a wrong password.
	dummy []byte
}

func loadHtpasswd(path string) (*htpasswd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("credentials_file: cannot read %q (relative names are resolved against the service root): %w", path, err)
	}
	defer f.Close()
	h := &htpasswd{hashes: make(map[string][]byte)}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("credentials_file %q line %d: want user:bcrypt-hash", path, line)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("credentials_file %q line %d: user %q: only bcrypt hashes are accepted (htpasswd -B): %w", path, line, user, err)
		}
		h.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credentials_file %q: %w", path, err)
	}
	if len(h.hashes) == 0 {
		return nil, fmt.Errorf("credentials_file %q: no accounts", path)
	}
	for _, hash := range h.hashes {
		h.dummy = hash
		break
	}
	return h, nil
}

func (h *htpasswd) verify(username, password string) bool {
	hash, ok := h.hashes[username]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
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
