package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Security events. Each is logged at warn level with the client address
// and a reason, never a secret.
const (
	eventAuthFailed      = "auth_failed"
	eventTLSFailed       = "tls_handshake_failed"
	eventConnRefused     = "connection_refused"
	eventThrottled       = "auth_throttled"
	eventCertUnavailable = "certificate_unavailable"
)

const (
	// securityLogBurst is how many events of one kind from one client are
	// logged per window; the rest are counted and the count is logged with
	// the next event after the window.
	securityLogBurst  = 5
	securityLogWindow = time.Minute
)

// securityLog samples security events per client and kind, so that a
// flood from one address cannot fill the disk while every client still
// shows up.
type securityLog struct {
	logger *zap.Logger
	burst  int
	window time.Duration
	now    func() time.Time // time.Now but in tests

	mu      sync.Mutex
	windows map[securityKey]*securityWindow
}

type securityKey struct {
	client netip.Addr
	event  string
}

type securityWindow struct {
	start      time.Time
	count      int
	suppressed int
}

func newSecurityLog(logger *zap.Logger) *securityLog {
	return &securityLog{
		logger:  logger,
		burst:   securityLogBurst,
		window:  securityLogWindow,
		now:     time.Now,
		windows: make(map[securityKey]*securityWindow),
	}
}

// warn logs one event of kind event from client, unless this client has
// used up its burst for the window.
func (l *securityLog) warn(client netip.Addr, event, msg string, fields ...zap.Field) {
	suppressedBefore, ok := l.admit(client, event)
	if !ok {
		return
	}
	all := append([]zap.Field{zap.String("event", event), zap.String("client.address", client.String())}, fields...)
	if suppressedBefore > 0 {
		all = append(all, zap.Int("suppressed_in_previous_window", suppressedBefore))
	}
	l.logger.Warn(msg, all...)
}

// admit counts an event and says whether to log it, and how many events of
// this kind from this client the previous window left unlogged.
func (l *securityLog) admit(client netip.Addr, event string) (suppressedBefore int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	key := securityKey{client, event}
	w := l.windows[key]
	if w == nil || now.Sub(w.start) >= l.window {
		if w != nil {
			suppressedBefore = w.suppressed
		} else if len(l.windows) >= maxTrackedClients {
			l.forgetOld(now)
		}
		w = &securityWindow{start: now}
		l.windows[key] = w
	}
	w.count++
	if w.count > l.burst {
		w.suppressed++
		return 0, false
	}
	return suppressedBefore, true
}

// forgetOld drops finished windows; under a flood from very many addresses
// it starts over.
func (l *securityLog) forgetOld(now time.Time) {
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.window {
			delete(l.windows, k)
		}
	}
	if len(l.windows) >= maxTrackedClients {
		clear(l.windows)
	}
}
