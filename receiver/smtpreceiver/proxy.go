package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
	"go.uber.org/zap"
)

// ProxyProtocolConfig is the proxy_protocol block: behind an L4 balancer
// (HAProxy, an AWS NLB) the socket's peer is the balancer, and the PROXY
// protocol header it sends first names the real client.
type ProxyProtocolConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// TrustedProxies are the balancers' addresses (CIDRs or IPs). A
	// connection from one of them must start with a PROXY header; any other
	// peer is served directly and cannot claim another address.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// Timeout is how long, in seconds, a trusted proxy has to send the header.
	Timeout int `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

const defaultProxyHeaderTimeout = 5

func (p *ProxyProtocolConfig) validate() error {
	var errs []error
	if p.Enabled && len(p.TrustedProxies) == 0 {
		errs = append(errs, errors.New("proxy_protocol.trusted_proxies: is required when proxy_protocol.enabled is true; list the balancers' addresses, e.g. trusted_proxies: [10.0.0.0/8]"))
	}
	for i, n := range p.TrustedProxies {
		if _, err := parseNetwork(n); err != nil {
			errs = append(errs, fmt.Errorf("proxy_protocol.trusted_proxies[%d]: %q is not a CIDR or IP address, e.g. 10.0.0.0/8 or 192.0.2.7", i, n))
		}
	}
	if p.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("proxy_protocol.timeout: must be greater than 0, got %d; set it in seconds, e.g. timeout: 5", p.Timeout))
	}
	return errors.Join(errs...)
}

// replyBadProxyHeader ends a connection from a trusted proxy whose PROXY
// header did not come in time or could not be parsed.
const replyBadProxyHeader = "421 4.7.0 PROXY protocol header missing or invalid\r\n"

// proxyListener reads the PROXY header of connections from trusted proxies
// before anything else sees them, so that the connection limits, the
// session, the records and throttling all see the client's address. The
// header is read in a goroutine per connection: a proxy that is slow to
// send it must not hold up the accept loop.
type proxyListener struct {
	net.Listener
	w       *worker
	trusted []netip.Prefix
	timeout time.Duration

	ready chan net.Conn
	err   chan error
	done  chan struct{}

	mu      sync.Mutex
	pending map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// newProxyListener wraps ln when proxy_protocol is enabled; otherwise it
// returns ln itself.
func newProxyListener(ln net.Listener, w *worker) net.Listener {
	cfg := w.r.cfg.ProxyProtocol
	if !cfg.Enabled {
		return ln
	}
	l := &proxyListener{
		Listener: ln,
		w:        w,
		timeout:  cfg.headerTimeout(),
		ready:    make(chan net.Conn),
		err:      make(chan error, 1),
		done:     make(chan struct{}),
		pending:  make(map[net.Conn]struct{}),
	}
	for _, n := range cfg.TrustedProxies {
		if p, err := parseNetwork(n); err == nil { // Validate has refused bad ones
			l.trusted = append(l.trusted, p)
		}
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *proxyListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.err:
		l.err <- err // every later Accept fails the same way
		return nil, err
	}
}

func (l *proxyListener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
		for c := range l.pending {
			_ = c.Close()
		}
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

func (l *proxyListener) acceptLoop() {
	defer l.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.isClosed() || errors.Is(err, net.ErrClosed) {
				l.err <- err
				return
			}
			// A passing failure (out of file descriptors, a connection
			// reset before accept): wait and go on, as go-smtp's own
			// accept loop would, instead of ending the worker.
			l.w.r.set.Logger.Debug("accept failed; retrying", zap.Error(err), zap.Duration("in", backoff))
			select {
			case <-time.After(backoff):
			case <-l.done:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if !l.isTrusted(remoteIP(c)) {
			// Served as it is: its socket address is the client. A PROXY
			// header it sends is an unknown command to the session.
			l.deliver(c)
			continue
		}
		if !l.addPending(c) {
			_ = c.Close()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			pc, err := l.readHeader(c)
			l.removePending(c)
			switch {
			case err != nil && l.isClosed():
				_ = c.Close() // shutdown closed it while it waited
				return
			case err != nil:
				l.refuse(c, err)
				return
			}
			l.deliver(pc)
		}()
	}
}

func (l *proxyListener) isTrusted(ip netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// deliver hands a connection to Accept, or closes it when the listener is
// closing.
func (l *proxyListener) deliver(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *proxyListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *proxyListener) addPending(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *proxyListener) removePending(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, c)
}

// refuse answers 421 and closes a trusted proxy's connection without a
// usable header, and counts it.
func (l *proxyListener) refuse(c net.Conn, err error) {
	l.w.connectionRejected("proxy_protocol")
	l.w.r.set.Logger.Debug("PROXY protocol header missing or invalid",
		zap.Stringer("proxy", c.RemoteAddr()), zap.Error(err))
	sayAndClose(c, replyBadProxyHeader)
}

// errNotStream refuses a header that names a datagram or unix transport.
var errNotStream = errors.New("PROXY header names no TCP connection")

// readHeader reads the PROXY header (v1 or v2) within the timeout and
// returns the connection as the client's. A LOCAL header (a balancer's own
// health check) or PROXY UNKNOWN keeps the socket's addresses.
func (l *proxyListener) readHeader(c net.Conn) (net.Conn, error) {
	if err := c.SetReadDeadline(time.Now().Add(l.timeout)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	h, err := proxyproto.Read(br)
	if err != nil {
		return nil, err
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	pc := &proxiedConn{Conn: c, br: br, remote: c.RemoteAddr()}
	if h.Command.IsLocal() || h.TransportProtocol == proxyproto.UNSPEC {
		return pc, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return nil, errNotStream
	}
	pc.remote = src
	return pc, nil
}

// proxiedConn is a connection whose PROXY header has been read: its
// RemoteAddr is the client named there, and bytes read past the header are
// served first.
type proxiedConn struct {
	net.Conn
	br     *bufio.Reader
	remote net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

func (c *proxiedConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil // drained: read the socket directly from now on
	}
	return c.Conn.Read(p)
}
