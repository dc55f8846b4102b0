package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// plainConn is the connection go-smtp reads and writes: plain text, always.
// TLS, for STARTTLS as for implicit TLS, is done here, below go-smtp, so
// that this layer sees and can adjust the command stream before and after
// STARTTLS alike:
//   - STARTTLS is answered and its handshake run here; go-smtp has no TLS
//     configuration and never sees the command. What the client sent after
//     it in plain text is discarded (no command injection into the TLS
//     session).
//   - RCPT TO:<postmaster> without a domain, which RFC 5321 4.5.1 says a
//     server must accept and go-smtp's address parser refuses, reaches
//     go-smtp as <postmaster@domain>.
//   - Command lines are limited by the lineGuard, message lines are not.
//   - go-smtp's whimsical reply texts are replaced by plain ones.
//   - Replies are sent when go-smtp is about to read (or close), so the
//     lines of an EHLO reply and the replies to pipelined commands leave in
//     one write (go-smtp writes every line on its own). A reply that ends
//     the session (closeAfterReply) leaves at once, and is the last.
//
// go-smtp's own STARTTLS cannot be used for this: it wraps the connection
// it was given in a tls.Conn and reads through that, so no layer below it
// ever sees the plain text again.
//
// Read and Write are called by go-smtp's command loop only, which does not
// read before it has answered the commands it read: a line that must wait
// (STARTTLS, whatever follows DATA) is kept back until go-smtp asks for
// more, and by then every reply before it has been written.
type plainConn struct {
	tc    *trackedConn
	guard *lineGuard
	// startTLS is the configuration STARTTLS uses; nil without TLS or with
	// implicit TLS.
	startTLS *tls.Config
	// postmaster is what a bare <postmaster> gets before its '>': "@domain".
	postmaster string

	// rw is what bytes cross: tc, or the tls.Conn over it.
	rw net.Conn
	// tlsConn is the TLS session: from the start with implicit TLS, after
	// STARTTLS otherwise; handshake runs its handshake once.
	tlsConn   *tls.Conn
	handshake sync.Once
	hsErr     error
	state     atomic.Pointer[tls.ConnectionState]

	// sess is go-smtp's session of this connection, once EHLO created it.
	sess atomic.Pointer[session]
	// needHello is set by STARTTLS: the client must say EHLO again
	// before a transaction (RFC 3207 4.2).
	needHello atomic.Bool

	// carry is what was read but is not go-smtp's yet: what follows a
	// line kept back, a rewritten line, or the start of a line that may
	// still become one (carryPartial: more must be read after it).
	// carryErr is the error of the read it came from.
	carry        []byte
	carryErr     error
	carryPartial bool
	// tlsDue: a STARTTLS line is next; tlsBare: it had no argument.
	tlsDue, tlsBare bool
	// replyStart: the next write starts a reply (the last one ended one).
	replyStart bool

	// bufs are the receiver's read buffers, for bodyReader (nil in tests
	// without a receiver: go-smtp then reads bodies itself).
	bufs *readBuffers
	// bodyReady is set when go-smtp has answered DATA with 354: the session
	// may take the body (takeBody); body is the bodyReader it took, until
	// go-smtp has read the end marker plainConn gives it instead.
	bodyReady atomic.Bool
	body      *bodyReader

	// out holds replies until go-smtp reads or closes, or the connection
	// ends the session itself (flush). Close may come from another
	// goroutine.
	outMu sync.Mutex
	out   *[]byte // nil when nothing is held
}

// replyBuffers hold replies between go-smtp's writes and the flush; a
// connection waiting for its next command holds none.
var replyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 512) // an EHLO reply is about 250 bytes
	return &b
}}

// maxPooledOut is the largest reply buffer given back to the pool.
const maxPooledOut = 4 << 10

// Replies plainConn writes itself (go-smtp never saw their commands).
const (
	replyReadyForTLS      = "220 2.0.0 Ready to start TLS\r\n"
	replyTLSActive        = "503 5.5.1 TLS already active\r\n"
	replyTLSNeedsHello    = "503 5.5.1 Send EHLO first\r\n"
	replyTLSInTransaction = "503 5.5.1 STARTTLS not allowed during a mail transaction\r\n"
	replyTLSSyntax        = "501 5.5.4 STARTTLS takes no parameters\r\n"
	starttlsCapability    = "250-STARTTLS\r\n"
	// endOfEmptyBody is what go-smtp's DATA reader gets when the session
	// has read the body through a bodyReader.
	endOfEmptyBody = ".\r\n"
)

// newPlainConn puts the plain-text layer over an admitted connection.
// implicit is the TLS configuration of an implicit-TLS port, startTLS that
// of STARTTLS; at most one is set.
func newPlainConn(tc *trackedConn, implicit, startTLS *tls.Config, domain string) *plainConn {
	c := &plainConn{tc: tc, guard: tc.guard, startTLS: startTLS, postmaster: "@" + domain, rw: tc, replyStart: true, bufs: tc.w.r.readBuffers}
	if implicit != nil {
		c.tlsConn = tls.Server(tc, implicit)
		c.rw = c.tlsConn
	}
	c.guard.watchTLS = implicit != nil || startTLS != nil
	tc.flushReplies = func() { _ = c.flush() }
	c.guard.onHello = func() { c.needHello.Store(false) }
	return c
}

// plainConnOf finds the plainConn under a connection go-smtp hands out.
func plainConnOf(c net.Conn) *plainConn {
	pc, _ := c.(*plainConn)
	return pc
}

// tlsState is the TLS session's state, nil before one is up.
func (c *plainConn) tlsState() *tls.ConnectionState { return c.state.Load() }

// implicitHandshake runs the handshake of an implicit-TLS connection
// before anything else crosses it, within the idle timeout.
func (c *plainConn) implicitHandshake() error {
	if c.tlsConn == nil {
		return nil
	}
	c.handshake.Do(func() {
		_ = c.tc.Conn.SetReadDeadline(time.Now().Add(c.tc.idle))
		if c.hsErr = c.tlsConn.Handshake(); c.hsErr == nil {
			c.tlsReady()
		}
	})
	return c.hsErr
}

// tlsReady makes the completed TLS session the way bytes cross.
func (c *plainConn) tlsReady() {
	st := c.tlsConn.ConnectionState()
	c.state.Store(&st)
	c.outMu.Lock() // flush may run in a goroutine closing the connection
	c.rw = c.tlsConn
	c.outMu.Unlock()
	c.tc.tlsUp(c.tlsConn)
}

func (c *plainConn) Read(p []byte) (int, error) {
	if err := c.implicitHandshake(); err != nil {
		return 0, err
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	// go-smtp reads a DATA body itself unless the session took it.
	c.bodyReady.Store(false)
	if b := c.body; b != nil {
		// The session has read the body, or as much as it wanted: the
		// rest goes, and go-smtp's DATA reader gets an empty body.
		c.body = nil
		if err := b.finish(); err != nil {
			return 0, err
		}
		return copy(p, endOfEmptyBody), nil
	}
	for {
		if c.tlsDue {
			c.tlsDue = false
			if err := c.answerSTARTTLS(); err != nil {
				return 0, err
			}
		}
		n, err := c.fill(p)
		if n == 0 {
			return 0, err
		}
		k, stop := c.guard.feed(p[:n])
		if c.guard.failed {
			// onTooLong has answered and closed the connection; go-smtp
			// gets none of the line.
			return 0, smtp.ErrTooLongLine
		}
		if stop == stopNone || stop == stopAfterData && k == n {
			return n, err
		}
		c.keepBack(p[k:n], stop, err)
		if k > 0 {
			return k, nil
		}
	}
}

// keepBack keeps what follows the point where feed stopped.
func (c *plainConn) keepBack(rest []byte, stop lineStop, err error) {
	switch stop {
	case stopAfterData, stopLongLine:
		c.keep(err, false, rest)
	case stopPartial:
		if err != nil {
			// Nothing more is coming: the line goes to go-smtp as it is.
			c.guard.unwatched = true
			c.keep(err, false, rest)
			return
		}
		c.keep(nil, true, rest)
	case stopStartTLS:
		end := bytes.IndexByte(rest, '\n') + 1
		c.tlsDue, c.tlsBare = true, isBareSTARTTLS(rest[:end])
		c.keep(err, false, rest[end:])
	case stopPostmaster:
		gt, _ := postmasterRecipient(rest)
		c.keep(err, false, rest[:gt], []byte(c.postmaster), rest[gt:])
		c.guard.added = len(c.postmaster)
	}
}

// keep puts bytes in front of the carry (a copy: they are in go-smtp's
// buffer).
func (c *plainConn) keep(err error, partial bool, parts ...[]byte) {
	size := len(c.carry)
	for _, b := range parts {
		size += len(b)
	}
	carry := make([]byte, 0, size)
	for _, b := range parts {
		carry = append(carry, b...)
	}
	c.carry = append(carry, c.carry...)
	if err != nil {
		c.carryErr = err
	}
	c.carryPartial = partial
}

// fill reads the carry first, then the connection: right after the carry
// when the carry is the start of a line.
func (c *plainConn) fill(p []byte) (int, error) {
	if len(c.carry) == 0 {
		if err := c.carryErr; err != nil {
			c.carryErr = nil
			return 0, err
		}
		return c.rw.Read(p)
	}
	n := copy(p, c.carry)
	c.carry = c.carry[n:]
	if len(c.carry) > 0 {
		return n, nil
	}
	err, partial := c.carryErr, c.carryPartial
	c.carry, c.carryErr, c.carryPartial = nil, nil, false
	if partial && n < len(p) {
		m, err := c.rw.Read(p[n:])
		return n + m, err
	}
	return n, err
}

// answerSTARTTLS answers the STARTTLS line go-smtp never saw. Every reply
// before it has been written. On success what the client sent after the
// line in plain text is dropped and the session starts over inside TLS.
func (c *plainConn) answerSTARTTLS() error {
	if reply := c.refuseSTARTTLS(); reply != "" {
		return c.say(reply)
	}
	c.carry, c.carryErr, c.carryPartial = nil, nil, false
	// From the 220 on only TLS may cross: a shutdown or a timeout closes
	// the connection without a plain-text reply the client could not read.
	c.tc.awaitTLS()
	if err := c.say(replyReadyForTLS); err != nil {
		return err
	}
	tconn := tls.Server(c.tc, c.startTLS)
	// The handshake gets the idle timeout of its own (the deadline go-smtp
	// set ran from when it began to wait for the command). A failed one is
	// counted and logged by the handshake's accounting (tls.go) as the
	// connection closes.
	if err := c.tc.SetReadDeadline(time.Now().Add(c.tc.idle)); err != nil {
		return err
	}
	if err := tconn.Handshake(); err != nil {
		_ = c.tc.Close()
		return net.ErrClosed
	}
	c.tlsConn = tconn
	c.handshake.Do(func() {})
	c.tlsReady()
	c.needHello.Store(true)
	if s := c.sess.Load(); s != nil {
		s.tlsStarted(c.tlsState())
	}
	return nil
}

// refuseSTARTTLS is the reply to a STARTTLS that cannot start TLS, or "".
func (c *plainConn) refuseSTARTTLS() string {
	s := c.sess.Load()
	switch {
	case !c.tlsBare:
		return replyTLSSyntax
	case c.tlsConn != nil || c.startTLS == nil:
		return replyTLSActive
	case s == nil:
		return replyTLSNeedsHello
	case s.inTransaction():
		return replyTLSInTransaction
	}
	return ""
}

// say sends a reply of this layer's own, after go-smtp's.
func (c *plainConn) say(reply string) error {
	c.hold([]byte(reply))
	_ = c.rw.SetWriteDeadline(time.Now().Add(replyWriteWait))
	return c.flush()
}

// Write takes a reply line of go-smtp's (it writes one line per call),
// with STARTTLS added to the EHLO capabilities while it is on offer and a
// plain text in place of a whimsical one. It is sent at the next flush.
func (c *plainConn) Write(p []byte) (int, error) {
	if err := c.implicitHandshake(); err != nil {
		return 0, err
	}
	c.guard.replied(p)
	if c.guard.watchTLS && bytes.Equal(p, goSMTPNoTLS) {
		// go-smtp saw a STARTTLS line: one whose argument was too long
		// for watch to wait for its end. It is refused as when whole.
		p = []byte(replyTLSSyntax)
	}
	if bytes.HasPrefix(p, []byte("354 ")) {
		c.bodyReady.Store(true)
	}
	if c.tc != nil && bytes.Equal(p, goSMTPTooLarge) {
		c.tc.w.messageRejected("size")
	}
	c.hold(reworded(p))
	if c.replyStart && c.startTLS != nil && c.tlsConn == nil && bytes.HasPrefix(p, []byte("250-")) {
		// The first line of a multi-line 250: go-smtp's answer to EHLO.
		c.hold([]byte(starttlsCapability))
	}
	c.replyStart = len(p) > 3 && p[3] == ' '
	if c.replyStart && c.tc != nil && c.tc.closeAfter.Load() {
		// The session ends with this reply (closeAfterReply): it goes now
		// and the connection closes behind it, so no reply to a command
		// go-smtp had already read follows it.
		return len(p), c.flush()
	}
	return len(p), nil
}

// hold adds reply bytes to what the next flush sends.
func (c *plainConn) hold(p []byte) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.out == nil {
		c.out = replyBuffers.Get().(*[]byte)
	}
	*c.out = append(*c.out, p...)
}

// flush sends the replies held, in one write. It runs before every read,
// so no reply waits for the client; before closing; and before the
// connection writes a last reply of its own (trackedConn.endLocked, for
// example as go-smtp sets its read deadline while the receiver shuts
// down).
func (c *plainConn) flush() error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.out == nil {
		return nil
	}
	_, err := c.rw.Write(*c.out)
	if cap(*c.out) <= maxPooledOut {
		*c.out = (*c.out)[:0]
		replyBuffers.Put(c.out)
	}
	c.out = nil
	return err
}

// goSMTPNoTLS is go-smtp's answer to a STARTTLS command (it has no TLS
// configuration).
var goSMTPNoTLS = []byte("502 5.5.1 TLS not supported\r\n")

// goSMTPTooLarge is go-smtp's refusal of a message announced (MAIL ...
// SIZE=) or sent (a BDAT chunk) over the size limit; the session never
// sees that message, so its refusal is counted here. (A DATA body over
// the limit is refused, and counted, by the session.)
var goSMTPTooLarge = []byte("552 5.3.4 Max message size exceeded\r\n")

// rewordings replace go-smtp's reply texts that an operator should not
// have to explain; each is matched at the start of a reply line.
var rewordings = []struct{ from, to []byte }{
	{[]byte("250 2.0.0 Roger, accepting mail from <"), []byte("250 2.1.0 Sender OK\r\n")},
	{[]byte("250 2.0.0 I'll make sure <"), []byte("250 2.1.5 Recipient OK\r\n")},
	{[]byte("250 2.0.0 I have successfully done nothing\r\n"), []byte("250 2.0.0 OK\r\n")},
}

func reworded(p []byte) []byte {
	if !bytes.HasPrefix(p, []byte("250 2.0.0 ")) {
		return p
	}
	for _, r := range rewordings {
		if bytes.HasPrefix(p, r.from) {
			return r.to
		}
	}
	return p
}

// Close sends what go-smtp wrote last (its 221, or a 421) and closes.
func (c *plainConn) Close() error {
	_ = c.flush()
	return c.tc.Close()
}

func (c *plainConn) LocalAddr() net.Addr                { return c.tc.LocalAddr() }
func (c *plainConn) RemoteAddr() net.Addr               { return c.tc.RemoteAddr() }
func (c *plainConn) SetDeadline(t time.Time) error      { return c.tc.SetDeadline(t) }
func (c *plainConn) SetReadDeadline(t time.Time) error  { return c.tc.SetReadDeadline(t) }
func (c *plainConn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }

// isBareSTARTTLS says whether a STARTTLS line has no argument.
func isBareSTARTTLS(line []byte) bool {
	return len(bytes.TrimRight(line[len("STARTTLS"):], " \t\r\n")) == 0
}

// pathState is how far a command line matches RCPT TO:<postmaster>.
type pathState uint8

const (
	pathNo    pathState = iota
	pathMaybe           // the line ends while it still matches
	pathMatch
)

// postmasterRecipient matches the start of a line against RCPT
// TO:<postmaster> the way go-smtp parses RCPT (verb, one space, "TO:" in
// any case, optional white space, the path). On a match it returns the
// index of the path's '>'.
func postmasterRecipient(line []byte) (int, pathState) {
	i := 0
	// expect matches word (upper-case ASCII) at i, in any case.
	expect := func(word string) pathState {
		for j := 0; j < len(word); j, i = j+1, i+1 {
			if i == len(line) {
				return pathMaybe
			}
			if upper(line[i]) != word[j] {
				return pathNo
			}
		}
		return pathMatch
	}
	// blanks skips white space (go-smtp trims it).
	blanks := func() bool {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		return i < len(line)
	}
	if st := expect("RCPT "); st != pathMatch {
		return 0, st
	}
	if !blanks() {
		return 0, pathMaybe
	}
	if st := expect("TO:"); st != pathMatch {
		return 0, st
	}
	if !blanks() {
		return 0, pathMaybe
	}
	if st := expect("<POSTMASTER>"); st != pathMatch {
		return 0, st
	}
	return i - 1, pathMatch
}

func upper(b byte) byte {
	if 'a' <= b && b <= 'z' {
		return b - ('a' - 'A')
	}
	return b
}

// hasPrefixFold says whether p starts with word (upper-case ASCII), in any
// case.
func hasPrefixFold(p []byte, word string) bool {
	return len(p) >= len(word) && isPrefixFold(p[:len(word)], word)
}

// isPrefixFold says whether all of p is the start of word (upper-case
// ASCII), in any case.
func isPrefixFold(p []byte, word string) bool {
	if len(p) > len(word) {
		return false
	}
	for i := range p {
		if upper(p[i]) != word[i] {
			return false
		}
	}
	return true
}
