package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// A connection's life: limitListener (limits.go) admits it and opens a
// trackedConn, which the receiver's connSet holds until it closes. The
// session calls beginData/endData around a transfer, transferFailure after
// one, closeAfterReply to end the session after its reply, and tlsUp; the
// receiver's Shutdown calls connSet.stop, drain, closeAll and wait.

// replyShuttingDown ends a session that waits for its next command when the
// receiver shuts down.
const replyShuttingDown = "421 4.3.2 Service shutting down, try again later\r\n"

// replyTooLongLine refuses a command line longer than max_line_length
// (the text go-smtp uses for it).
const replyTooLongLine = "500 5.4.0 Too long line, closing connection\r\n"

// replyIdleTimeout ends a session that sent no complete command within
// timeout (go-smtp's own text for it is a joke).
const replyIdleTimeout = "421 4.4.2 Idle timeout, closing connection\r\n"

// replyWriteWait bounds the write of a last reply: the client may be gone,
// or not reading.
const replyWriteWait = time.Second

// sayAndClose writes a last reply, best effort, and closes.
func sayAndClose(c net.Conn, reply string) {
	_ = c.SetWriteDeadline(time.Now().Add(replyWriteWait))
	_, _ = io.WriteString(c, reply)
	_ = c.Close()
}

// connSet is the receiver's open connections. Once stopped it takes no
// more, so Shutdown can drain and close every one and wait for them.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	wg    sync.WaitGroup
	// stopping is written under mu (add must not race with stop) and read
	// without it by the accept loops.
	stopping atomic.Bool
}

func newConnSet() *connSet {
	return &connSet{conns: make(map[*trackedConn]struct{})}
}

// add registers c, unless Shutdown has begun.
func (s *connSet) add(c *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// stop takes no more connections and returns those open; ok is false when
// it had already stopped.
func (s *connSet) stop() (open []*trackedConn, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return nil, false
	}
	s.stopping.Store(true)
	return s.listLocked(), true
}

func (s *connSet) isStopping() bool { return s.stopping.Load() }

func (s *connSet) listLocked() []*trackedConn {
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// closeAll closes the connections still open.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.listLocked()
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// wait waits for every connection to close until a or b fires; it reports
// whether they all did.
func (s *connSet) wait(a <-chan struct{}, b <-chan time.Time) bool {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-a:
	case <-b:
	}
	return false
}

// handlerReaper waits, one after the other, for go-smtp's handlers of
// closed connections to return, so that Shutdown can wait for every
// handler without a goroutine per open connection waiting for its own
// (see worker.serveConn). A handler returns moments after its connection
// closes, unless its session is still in the pipeline.
type handlerReaper struct {
	mu      sync.Mutex
	pending []*smtp.Server
	stopped bool           // set by stop; later servers are not waited for
	left    sync.WaitGroup // handed over, not returned yet
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

func startHandlerReaper() *handlerReaper {
	h := &handlerReaper{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go h.run()
	return h
}

// add hands over the server of a closed connection.
func (h *handlerReaper) add(s *smtp.Server) {
	h.mu.Lock()
	if h.stopped {
		// A connection that outlived Shutdown's wait (it logged a
		// warning): there is no one left to wait for its handler.
		h.mu.Unlock()
		return
	}
	h.pending = append(h.pending, s)
	h.left.Add(1)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *handlerReaper) run() {
	defer close(h.done)
	for {
		select {
		case <-h.wake:
		case <-h.quit:
			return
		}
		h.mu.Lock()
		batch := h.pending
		h.pending = nil
		h.mu.Unlock()
		for _, s := range batch {
			// Its one connection is closed and its listener has none
			// left: Shutdown waits for the handler to return.
			_ = s.Shutdown(context.Background())
			h.left.Done()
		}
	}
}

// stop waits for the handlers handed over so far, then ends the reaper.
func (h *handlerReaper) stop() {
	h.mu.Lock()
	h.stopped = true // no Add after this, so none races with Wait
	h.mu.Unlock()
	h.left.Wait()
	close(h.quit)
	<-h.done
}

// trackedConn is the connection go-smtp reads and writes through. It
// decides when and how a session ends; the limits it applies, its read
// buffer and its TLS handshake's accounting are parts of their own.
//
// It owns the read deadlines, because go-smtp's own are too lenient: its
// line reader hands a partial line to the command parser when a deadline
// fires, so a client trickling one byte at a time outlives the timeout
// several times over. Here a fired deadline is final: every later read
// fails at once, and go-smtp answers 421 and closes. Beyond that it
//   - extends the idle deadline as message bytes arrive, within the
//     transfer's limits (transferClock);
//   - lets Shutdown drain sessions: one waiting for a command hears 421 at
//     once, one in DATA finishes its message first;
//   - closes itself after the next reply when the session asks it to.
type trackedConn struct {
	net.Conn
	w     *worker
	ip    netip.Addr
	rd    pooledReader
	guard *lineGuard
	hs    tlsHandshake
	idle  time.Duration
	// now is the clock of the transfer limits (time.Now but in tests).
	now func() time.Time

	// server is go-smtp's server of this connection. It goes to the
	// receiver's handlerReaper once it is set and the connection closed,
	// whichever comes last (handedOver makes that happen once).
	server     atomic.Pointer[smtp.Server]
	isClosed   atomic.Bool
	handedOver atomic.Bool

	mu       sync.Mutex
	transfer transferClock
	inData   bool
	// failure is the reply a transfer ended with when it was too slow or
	// took too long; every later read fails with it.
	failure  *smtp.SMTPError
	draining bool
	expired  bool
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
	// ended is set once a last reply is written and the connection closed.
	ended bool
	// flushReplies sends the replies of go-smtp's that plainConn holds;
	// a last reply of this connection's own follows them.
	flushReplies func()

	closeAfter atomic.Bool
	closeOnce  sync.Once
}

// openTrackedConn wraps an admitted connection and registers it with the
// receiver; it refuses (and closes) the connection once Shutdown has begun.
func openTrackedConn(c net.Conn, w *worker, ip netip.Addr) (*trackedConn, bool) {
	r := w.r
	tc := &trackedConn{
		Conn:     c,
		w:        w,
		ip:       ip,
		rd:       pooledReader{src: c, pool: r.readBuffers},
		guard:    newLineGuard(r.cfg.MaxLineLength),
		idle:     r.cfg.idleTimeout(),
		now:      r.now,
		transfer: newTransferClock(r.cfg),
	}
	if !r.cfg.TLS.Implicit {
		tc.replyConn = c
	}
	tc.guard.onTooLong = tc.refuseLongLine
	if !r.conns.add(tc) {
		r.limiter.release(ip)
		_ = c.Close()
		return nil, false
	}
	w.sessionOpened()
	return tc, true
}

// released gives back what the connection held, once it is closed.
func (c *trackedConn) released() {
	c.w.r.limiter.release(c.ip)
	c.hs.closed(c.w, c.ip)
	c.w.sessionClosed()
	// Before leaving the set: once Shutdown sees every connection gone,
	// every server is with the reaper.
	c.handOver()
	c.w.r.conns.remove(c)
}

// served records go-smtp's server of this connection, once its handler
// runs.
func (c *trackedConn) served(s *smtp.Server) {
	c.server.Store(s)
	if c.isClosed.Load() {
		c.handOver()
	}
}

// handOver gives the server to the reaper when the connection is closed
// and the server known.
func (c *trackedConn) handOver() {
	if s := c.server.Load(); s != nil && c.isClosed.Load() && c.handedOver.CompareAndSwap(false, true) {
		c.w.r.handlers.add(s)
	}
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.expired {
		defer c.mu.Unlock()
		if c.failure != nil {
			return 0, c.failure
		}
		return 0, os.ErrDeadlineExceeded
	}
	if c.ended {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	bulk := c.inData
	c.waiting = c.rd.buffered() == 0
	c.mu.Unlock()

	n, err := c.rd.Read(p, bulk)

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
		if failure := c.transfer.count(n, c.now()); failure != nil {
			return n, c.failLocked(failure)
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
	reply := replyIdleTimeout
	if c.inData {
		failure := c.failLocked(c.transfer.timedOut(c.now()))
		if !c.commandWait {
			// In the middle of message content: go-smtp sends the 421
			// (from Data, or as the error of a BDAT chunk read).
			return failure
		}
		// Waiting for the next BDAT command: go-smtp would call it a
		// connection error; the reply is the transfer's.
		reply = "421 4.4.2 " + c.failure.Message + "\r\n"
	}
	c.expired = true
	if c.replyConn == nil {
		return err // TLS handshake under way: go-smtp answers
	}
	c.endLocked(reply)
	return net.ErrClosed
}

// failLocked ends a transfer with reply: this read and every later one
// fail with it, and the connection closes once go-smtp has sent it.
func (c *trackedConn) failLocked(reply *smtp.SMTPError) error {
	c.expired = true
	c.failure = reply
	c.closeAfter.Store(true)
	return reply
}

// transferFailure is the 421 a too slow or too long transfer ended with.
func (c *trackedConn) transferFailure() *smtp.SMTPError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
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
			c.endLocked(replyShuttingDown)
			return net.ErrClosed
		}
		t = time.Now() // go-smtp answers the timeout with a 421 itself
	}
	return c.setReadDeadlineLocked(t)
}

func (c *trackedConn) setReadDeadlineLocked(t time.Time) error {
	if c.inData {
		t = c.transfer.cap(t)
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
	if c.closeAfter.Load() {
		_ = c.Close()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.isClosed.Store(true)
		c.released()
	})
	return err
}

// closeAfterReply ends the session once go-smtp has written its next reply.
func (c *trackedConn) closeAfterReply() { c.closeAfter.Store(true) }

// beginData starts the overall clock of one message transfer.
func (c *trackedConn) beginData() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inData = true
	c.transfer.begin(c.now())
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
		c.endLocked(replyShuttingDown)
	}
}

// refuseLongLine answers an over-long command line and closes. It runs in
// go-smtp's read path, where go-smtp is not writing. Without a way to
// reply yet (right after STARTTLS, before the next EHLO) go-smtp answers.
func (c *trackedConn) refuseLongLine() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.replyConn != nil {
		c.endLocked(replyTooLongLine)
	}
}

// endLocked writes a last reply and closes. It runs only where go-smtp
// cannot be writing: while it waits in Read, or as it is about to read.
func (c *trackedConn) endLocked(reply string) {
	if c.ended {
		return
	}
	c.ended = true
	_ = c.Conn.SetWriteDeadline(time.Now().Add(replyWriteWait))
	if c.flushReplies != nil {
		c.flushReplies()
	}
	_, _ = io.WriteString(c.replyConn, reply)
	_ = c.Close()
}

// tlsUp records the TLS connection replies now go through.
func (c *trackedConn) tlsUp(tc *tls.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replyConn = tc
}

// awaitTLS marks the time between "220 Ready to start TLS" and the
// handshake: nothing but TLS may be written.
func (c *trackedConn) awaitTLS() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replyConn = nil
}

// tlsPending marks a handshake in progress: until it is done, nothing but
// go-smtp may write.
func (c *trackedConn) tlsPending(serverName string) {
	c.hs.begin(serverName)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replyConn = nil
}

// trackedConnOf finds the trackedConn under a connection: the plainConn
// go-smtp has, or the tls.Conn a TLS handshake runs on.
func trackedConnOf(c net.Conn) *trackedConn {
	for {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case *plainConn:
			return v.tc
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// readBuffers hands out the buffer_size read buffers of all connections.
type readBuffers struct {
	size int
	pool sync.Pool
}

func newReadBuffers(size int) *readBuffers {
	b := &readBuffers{size: size}
	b.pool.New = func() any {
		buf := make([]byte, size)
		return &buf
	}
	return b
}

func (b *readBuffers) get() *[]byte  { return b.pool.Get().(*[]byte) }
func (b *readBuffers) put(p *[]byte) { b.pool.Put(p) }

// pooledReader reads a message transfer through a buffer of buffer_size
// bytes, so that one read(2) takes up to that much, and gives the buffer
// back as soon as it is empty. Commands are read straight into go-smtp's
// own line buffer: a connection waiting for its next command holds no
// buffer of its own. Only the connection's reading goroutine uses it.
type pooledReader struct {
	src  io.Reader
	pool *readBuffers
	buf  *[]byte // nil when nothing is buffered
	r, w int
	err  error // the error of the read that filled buf, once it is empty
}

func (p *pooledReader) buffered() int { return p.w - p.r }

// Read reads through the buffer when bulk (a transfer is under way) or
// when bytes are buffered, and straight from the source otherwise.
func (p *pooledReader) Read(b []byte, bulk bool) (int, error) {
	if p.buf == nil {
		if !bulk || len(b) >= p.pool.size {
			return p.src.Read(b)
		}
		p.buf = p.pool.get()
		n, err := p.src.Read(*p.buf)
		p.r, p.w, p.err = 0, n, err
	}
	n := copy(b, (*p.buf)[p.r:p.w])
	p.r += n
	if p.r < p.w {
		return n, nil
	}
	err := p.err
	p.pool.put(p.buf)
	p.buf, p.r, p.w, p.err = nil, 0, 0, nil
	return n, err
}
