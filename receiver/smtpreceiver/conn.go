package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"go.uber.org/zap"
)

// replyTooManyConnections is written before go-smtp ever sees a connection
// that is over a limit, so the client learns why it is closed.
const replyTooManyConnections = "421 4.7.0 Too many connections, try again later\r\n"

// replyShuttingDown ends a session that waits for its next command when the
// receiver shuts down.
const replyShuttingDown = "421 4.3.2 Service shutting down, try again later\r\n"

// replyTooLongLine refuses a command line longer than max_line_length
// (the text go-smtp uses for it).
const replyTooLongLine = "500 5.4.0 Too long line, closing connection\r\n"

// replyIdleTimeout ends a session that sent no complete command within
// timeout (go-smtp's own text for it is a joke).
const replyIdleTimeout = "421 4.4.2 Idle timeout, closing connection\r\n"

// Replies to a message transfer that is too slow. They are SMTPErrors so
// that go-smtp sends them as they are, whether they come from Data (DATA)
// or from a read of a BDAT chunk.
var (
	errDataTooSlow = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message transfer too slow (below min_data_rate), closing connection"}
	errDataTooLong = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message transfer took longer than data_timeout, closing connection"}
)

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

// limitListener admits connections within the limits, wraps each in a
// trackedConn, and for implicit TLS in a tls.Conn, before go-smtp serves it.
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
			// Best effort: the client may already be gone.
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, replyTooManyConnections)
			_ = c.Close()
			continue
		}
		tc := newTrackedConn(c, l.w, ip)
		if !l.w.r.track(tc) {
			// Shutdown has begun: this connection slipped in as the
			// listener closed.
			l.w.r.limiter.release(ip)
			_ = c.Close()
			return nil, net.ErrClosed
		}
		if l.tlsConfig != nil {
			return tls.Server(tc, l.tlsConfig), nil
		}
		return tc, nil
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

// trackedConn is the connection go-smtp reads and writes through. It owns
// the read deadlines, because go-smtp's own are too lenient: its line reader
// hands a partial line to the command parser when a deadline fires, so a
// client trickling one byte at a time outlives the timeout several times
// over. Here a fired deadline is final: every later read fails at once, and
// go-smtp answers 421 and closes. It also
//   - reads the socket through a buffer of buffer_size bytes,
//   - bounds a whole DATA/BDAT transfer by data_timeout while extending the
//     idle deadline as bytes arrive,
//   - lets Shutdown drain sessions: one waiting for a command hears 421 at
//     once, one in DATA finishes its message first,
//   - closes itself after the next reply when the session asks it to.
type trackedConn struct {
	net.Conn
	w     *worker
	ip    netip.Addr
	br    *bufio.Reader
	guard *lineGuard
	// closed is closed with the connection.
	closed chan struct{}

	idle        time.Duration
	dataTimeout time.Duration
	// minRate is min_data_rate: bytes per second a transfer must keep up
	// over each idle-timeout window.
	minRate float64

	mu           sync.Mutex
	inData       bool
	dataDeadline time.Time
	windowStart  time.Time
	windowBytes  int64
	// dataFailure is the reply a transfer ended with when it was too slow
	// or took too long; every later read fails with it.
	dataFailure *smtp.SMTPError
	draining    bool
	expired     bool
	// replyConn is what replies must be written through (this connection,
	// or the tls.Conn over it once TLS is up); nil while a TLS handshake
	// is pending, when only go-smtp can write.
	replyConn net.Conn
	// waiting is true while go-smtp waits in Read with nothing buffered:
	// it is between commands and writes nothing.
	waiting bool
	// commandWait is true from go-smtp's call for a command line until
	// bytes arrive: a deadline firing then finds it waiting for a command
	// (between BDAT chunks, during a transfer).
	commandWait bool
	// ended is set when the drain has answered 421 and closed.
	ended bool

	// tlsServerName and tlsFailure describe a TLS handshake for the log
	// when it fails.
	tlsServerName string
	tlsFailure    string

	closeAfterReply atomic.Bool
	tlsStarted      atomic.Bool
	tlsDone         atomic.Bool
	closeOnce       sync.Once
}

func newTrackedConn(c net.Conn, w *worker, ip netip.Addr) *trackedConn {
	cfg := w.r.cfg
	tc := &trackedConn{
		Conn:        c,
		w:           w,
		ip:          ip,
		br:          bufio.NewReaderSize(c, cfg.BufferSize),
		guard:       newLineGuard(cfg.MaxLineLength),
		closed:      make(chan struct{}),
		idle:        cfg.idleTimeout(),
		dataTimeout: cfg.dataTimeout(),
		minRate:     float64(cfg.MinDataRate),
	}
	if !cfg.TLS.Implicit {
		tc.replyConn = c
	}
	tc.guard.onTooLong = tc.refuseLongLine
	return tc
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.expired {
		defer c.mu.Unlock()
		if c.dataFailure != nil {
			return 0, c.dataFailure
		}
		return 0, os.ErrDeadlineExceeded
	}
	if c.ended {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.waiting = c.br.Buffered() == 0
	c.mu.Unlock()

	n, err := c.br.Read(p)
	if n > 0 {
		c.guard.readBytes()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = false
	if n > 0 {
		c.commandWait = false
	}
	if c.ended {
		// The drain answered 421 while this read waited: what arrived
		// meanwhile is not served.
		return 0, net.ErrClosed
	}
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return n, c.timedOutLocked(err)
		}
		return n, err
	}
	if c.inData && n > 0 {
		if failure := c.checkRateLocked(n); failure != nil {
			return n, failure
		}
		// Message content is arriving: the client is not idle.
		_ = c.setReadDeadlineLocked(time.Now().Add(c.idle))
	}
	return n, nil
}

// timedOutLocked handles a fired read deadline. A fired deadline is final.
// Waiting for a command, the client hears 421 from here and the connection
// closes; in a transfer, the read fails with the 421 go-smtp is to send
// (the session closes the connection after it).
func (c *trackedConn) timedOutLocked(err error) error {
	c.expired = true
	reply := replyIdleTimeout
	if c.inData {
		c.dataFailure = errDataTooSlow
		if !time.Now().Before(c.dataDeadline) {
			c.dataFailure = errDataTooLong
		}
		if !c.commandWait {
			// In the middle of message content: go-smtp sends the 421
			// (from Data, or as the error of a BDAT chunk read).
			c.closeAfterReply.Store(true)
			return c.dataFailure
		}
		// Waiting for the next BDAT command: go-smtp would call it a
		// connection error; the reply is the transfer's.
		reply = c.dataFailure.Message
		reply = "421 4.4.2 " + reply + "\r\n"
	}
	if c.replyConn == nil {
		return err // TLS handshake under way: go-smtp answers
	}
	c.ended = true
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c.replyConn, reply)
	_ = c.Close()
	return net.ErrClosed
}

// checkRateLocked counts n transfer bytes into the current window and, at
// its end, refuses a transfer below min_data_rate.
func (c *trackedConn) checkRateLocked(n int) error {
	if c.minRate <= 0 {
		return nil
	}
	c.windowBytes += int64(n)
	now := time.Now()
	elapsed := now.Sub(c.windowStart)
	if elapsed < c.idle {
		return nil
	}
	if float64(c.windowBytes) < c.minRate*elapsed.Seconds() {
		c.expired = true
		c.dataFailure = errDataTooSlow
		c.closeAfterReply.Store(true)
		return c.dataFailure
	}
	c.windowStart, c.windowBytes = now, 0
	return nil
}

// transferFailure is the 421 a too slow or too long transfer ended with.
func (c *trackedConn) transferFailure() *smtp.SMTPError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dataFailure
}

// SetReadDeadline is called by go-smtp before every command line.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.guard.commandRead()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commandWait = true
	if c.draining && !c.inData {
		// go-smtp is about to read the next command: end the session.
		if c.replyConn != nil {
			c.endLocked()
			return net.ErrClosed
		}
		t = time.Now() // go-smtp answers the timeout with a 421 itself
	}
	return c.setReadDeadlineLocked(t)
}

func (c *trackedConn) setReadDeadlineLocked(t time.Time) error {
	if c.inData && t.After(c.dataDeadline) {
		t = c.dataDeadline
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline keeps the read side under the rules of SetReadDeadline.
func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil {
		c.guard.wrote(n)
	}
	if c.closeAfterReply.Load() {
		_ = c.Close()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		close(c.closed)
		c.w.r.untrack(c)
	})
	return err
}

// beginData starts the overall clock of one message transfer.
func (c *trackedConn) beginData() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inData = true
	now := time.Now()
	c.dataDeadline = now.Add(c.dataTimeout)
	c.windowStart, c.windowBytes = now, 0
	_ = c.setReadDeadlineLocked(now.Add(c.idle))
}

func (c *trackedConn) endData() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inData = false
	// A draining session ends at its next command (SetReadDeadline), after
	// go-smtp has replied to this message.
}

// drain ends the session at its next command: at once when it waits for
// one, after the reply to its message when it is in DATA.
func (c *trackedConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	switch {
	case c.inData:
	case c.replyConn == nil:
		// TLS not up yet: only go-smtp can answer, via a timeout.
		_ = c.Conn.SetReadDeadline(time.Now())
	case c.waiting:
		c.endLocked()
	}
}

// refuseLongLine answers an over-long command line and closes. It runs in
// go-smtp's read path, where go-smtp is not writing. Without a way to
// reply yet (right after STARTTLS, before the next EHLO) go-smtp answers.
func (c *trackedConn) refuseLongLine() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.replyConn == nil {
		return
	}
	c.ended = true
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c.replyConn, replyTooLongLine)
	_ = c.Close()
}

// endLocked answers 421 and closes. It runs only where go-smtp cannot be
// writing: while it waits in Read, or as it is about to read.
func (c *trackedConn) endLocked() {
	if c.ended {
		return
	}
	c.ended = true
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c.replyConn, replyShuttingDown)
	_ = c.Close()
}

// tlsUp records the TLS connection replies now go through.
func (c *trackedConn) tlsUp(tc *tls.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replyConn = tc
}

// tlsPending marks a handshake in progress: until it is done, nothing but
// go-smtp may write.
func (c *trackedConn) tlsPending(serverName string) {
	c.tlsStarted.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replyConn = nil
	c.tlsServerName = serverName
}

// tlsFailed records why a handshake cannot succeed.
func (c *trackedConn) tlsFailed(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tlsFailure = reason
}

// tlsFailureFields describe a failed handshake for the log.
func (c *trackedConn) tlsFailureFields() []zap.Field {
	c.mu.Lock()
	defer c.mu.Unlock()
	reason := c.tlsFailure
	if reason == "" {
		reason = "the handshake did not complete after the client hello (no common TLS version or cipher suite, the client refused the certificate, or it gave up)"
	}
	return []zap.Field{zap.String("reason", reason), zap.String("tls.server_name", c.tlsServerName)}
}

// trackedConnOf finds the trackedConn under a connection go-smtp hands out,
// which is a tls.Conn after STARTTLS or with implicit TLS.
func trackedConnOf(c net.Conn) *trackedConn {
	for {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}
