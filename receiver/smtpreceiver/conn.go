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
//   - lets Shutdown drain sessions: idle ones are timed out at once, one in
//     DATA finishes its message first,
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

	closeAfterReply atomic.Bool
	tlsStarted      atomic.Bool
	tlsDone         atomic.Bool
	closeOnce       sync.Once
}

func newTrackedConn(c net.Conn, w *worker, ip netip.Addr) *trackedConn {
	cfg := w.r.cfg
	return &trackedConn{
		Conn:        c,
		w:           w,
		ip:          ip,
		br:          bufio.NewReaderSize(c, cfg.BufferSize),
		idle:        time.Duration(cfg.Timeout) * time.Second,
		dataTimeout: time.Duration(cfg.DataTimeout) * time.Second,
	}
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.expired {
		c.mu.Unlock()
		return 0, os.ErrDeadlineExceeded
	}
	inData := c.inData
	c.mu.Unlock()

	n, err := c.br.Read(p)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			c.mu.Lock()
			c.expired = true
			c.mu.Unlock()
		}
		return n, err
	}
	if inData && n > 0 {
		// Message content is arriving: the client is not idle.
		c.mu.Lock()
		c.setReadDeadlineLocked(time.Now().Add(c.idle))
		c.mu.Unlock()
	}
	return n, nil
}

// SetReadDeadline is called by go-smtp before every command line.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining && !c.inData {
		t = time.Now()
	}
	return c.setReadDeadlineLocked(t)
}

func (c *trackedConn) setReadDeadlineLocked(t time.Time) error {
	if c.inData && t.After(c.dataDeadline) {
		t = c.dataDeadline
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is used by crypto/tls during handshakes.
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
	if c.draining {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
}

// drain ends the session at its next command: at once when it waits for
// one, after the reply to its message when it is in DATA.
func (c *trackedConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if !c.inData {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
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
