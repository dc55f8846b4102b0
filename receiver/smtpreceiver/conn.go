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
)

// replyTooManyConnections is written before go-smtp ever sees a connection
// that is over a limit, so the client learns why it is closed.
const replyTooManyConnections = "421 4.7.0 Too many connections, try again later\r\n"

// replyShuttingDown ends a session that waits for its next command when the
// receiver shuts down.
const replyShuttingDown = "421 4.3.2 Service shutting down, try again later\r\n"

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
	w  *worker
	ip netip.Addr
	br *bufio.Reader

	idle        time.Duration
	dataTimeout time.Duration

	mu           sync.Mutex
	inData       bool
	dataDeadline time.Time
	draining     bool
	expired      bool
	// replyConn is what replies must be written through (this connection,
	// or the tls.Conn over it once TLS is up); nil while a TLS handshake
	// is pending, when only go-smtp can write.
	replyConn net.Conn
	// waiting is true while go-smtp waits in Read with nothing buffered:
	// it is between commands and writes nothing.
	waiting bool
	// ended is set when the drain has answered 421 and closed.
	ended bool

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
		idle:        time.Duration(cfg.Timeout) * time.Second,
		dataTimeout: time.Duration(cfg.DataTimeout) * time.Second,
	}
	if !cfg.TLS.Implicit {
		tc.replyConn = c
	}
	return tc
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.expired {
		c.mu.Unlock()
		return 0, os.ErrDeadlineExceeded
	}
	if c.ended {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	inData := c.inData
	c.waiting = c.br.Buffered() == 0
	c.mu.Unlock()

	n, err := c.br.Read(p)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = false
	if c.ended {
		// The drain answered 421 while this read waited: what arrived
		// meanwhile is not served.
		return 0, net.ErrClosed
	}
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			c.expired = true
		}
		return n, err
	}
	if inData && n > 0 {
		// Message content is arriving: the client is not idle.
		_ = c.setReadDeadlineLocked(time.Now().Add(c.idle))
	}
	return n, nil
}

// SetReadDeadline is called by go-smtp before every command line.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	if c.closeAfterReply.Load() {
		_ = c.Close()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.w.r.untrack(c)
	})
	return err
}

// beginData starts the overall clock of one message transfer.
func (c *trackedConn) beginData() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inData = true
	c.dataDeadline = time.Now().Add(c.dataTimeout)
	_ = c.setReadDeadlineLocked(time.Now().Add(c.idle))
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
func (c *trackedConn) tlsPending() {
	c.tlsStarted.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replyConn = nil
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
