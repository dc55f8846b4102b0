package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"go.uber.org/zap"
)

// The limits a connection is held to: how many connections a client may
// open (connLimiter, applied at accept by limitListener), and how long and
// how slowly a message transfer may go on (transferClock). The connection
// itself, its deadlines and its end are in conn.go.

// replyTooManyConnections is written before go-smtp ever sees a connection
// that is over a limit, so the client learns why it is closed.
const replyTooManyConnections = "421 4.7.0 Too many connections, try again later\r\n"

// connLimiter counts open connections across all workers, in total and per
// client address; trusted networks are exempt from the per-client limit.
type connLimiter struct {
	maxTotal     int
	maxPerClient int
	trusted      []netip.Prefix

	mu    sync.Mutex
	total int
	per   map[netip.Addr]int
}

func newConnLimiter(cfg *Config) *connLimiter {
	l := &connLimiter{
		maxTotal:     cfg.MaxConnections,
		maxPerClient: cfg.MaxConnectionsPerClient,
		per:          make(map[netip.Addr]int),
	}
	for _, n := range cfg.TrustedNetworks {
		if p, err := parseNetwork(n); err == nil { // Validate has refused bad ones
			l.trusted = append(l.trusted, p)
		}
	}
	return l
}

func (l *connLimiter) isTrusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// acquire admits a connection from ip, or returns the reason it may not.
func (l *connLimiter) acquire(ip netip.Addr) (reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxTotal {
		return "max_connections"
	}
	if l.per[ip] >= l.maxPerClient && !l.isTrusted(ip) {
		return "max_connections_per_client"
	}
	l.total++
	l.per[ip]++
	return ""
}

func (l *connLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.per[ip] <= 1 {
		delete(l.per, ip)
	} else {
		l.per[ip]--
	}
}

// limitListener admits connections within the limits and wraps each in a
// trackedConn and the plainConn go-smtp serves.
type limitListener struct {
	net.Listener
	w         *worker
	tlsConfig *tls.Config // non-nil for implicit TLS
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		if reason := l.w.r.limiter.acquire(ip); reason != "" {
			l.w.connectionRejected(reason)
			l.w.r.secLog.warn(ip, eventConnRefused, "SMTP connection refused: too many connections", zap.String("reason", reason))
			sayAndClose(c, replyTooManyConnections)
			continue
		}
		tc, ok := openTrackedConn(c, l.w, ip)
		if !ok {
			// Shutdown has begun: this connection slipped in as the
			// listener closed.
			return nil, net.ErrClosed
		}
		return newPlainConn(tc, l.tlsConfig, l.w.startTLS, l.w.r.domain), nil
	}
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// Replies to a message transfer that is too slow. They are SMTPErrors so
// that go-smtp sends them as they are, whether they come from Data (DATA)
// or from a read of a BDAT chunk.
var (
	errDataTooSlow = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message transfer too slow (below min_data_rate), closing connection"}
	errDataTooLong = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message transfer took longer than data_timeout, closing connection"}
)

// transferClock holds one DATA/BDAT transfer to data_timeout overall and
// to min_data_rate over each window of timeout seconds. It only does the
// arithmetic; the caller passes the time, so the rules are tested with any
// clock.
type transferClock struct {
	window  time.Duration // timeout: the rate is judged over this long
	limit   time.Duration // data_timeout
	minRate float64       // min_data_rate in bytes per second; 0 is off

	deadline    time.Time
	windowStart time.Time
	windowBytes int64
}

func newTransferClock(cfg *Config) transferClock {
	return transferClock{window: cfg.idleTimeout(), limit: cfg.dataTimeout(), minRate: float64(cfg.MinDataRate)}
}

// begin starts a transfer at now.
func (t *transferClock) begin(now time.Time) {
	t.deadline = now.Add(t.limit)
	t.windowStart, t.windowBytes = now, 0
}

// count adds n bytes that arrived at now. At the end of a window it
// refuses a transfer that stayed below min_data_rate over it.
func (t *transferClock) count(n int, now time.Time) *smtp.SMTPError {
	if t.minRate <= 0 {
		return nil
	}
	t.windowBytes += int64(n)
	elapsed := now.Sub(t.windowStart)
	if elapsed < t.window {
		return nil
	}
	if float64(t.windowBytes) < t.minRate*elapsed.Seconds() {
		return errDataTooSlow
	}
	t.windowStart, t.windowBytes = now, 0
	return nil
}

// cap brings a read deadline forward to the end of the transfer.
func (t *transferClock) cap(deadline time.Time) time.Time {
	if deadline.After(t.deadline) {
		return t.deadline
	}
	return deadline
}

// timedOut is the reply for a read deadline that fired at now: the
// transfer took too long overall, or the client went quiet.
func (t *transferClock) timedOut(now time.Time) *smtp.SMTPError {
	if now.Before(t.deadline) {
		return errDataTooSlow
	}
	return errDataTooLong
}
