package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bytes"
	"crypto/tls"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
)

// lineGuard limits command lines to max_line_length and leaves message
// content (DATA, BDAT chunks) to max_message_bytes alone.
//
// go-smtp's own MaxLineLength cannot do that: it applies to every line it
// reads, message lines included, and a long line inside DATA then fails
// the transfer with 451 and an extra, unrequested 500. So go-smtp's limit
// is off (MaxLineLength 0) and this guard does the work. It must see the
// plain text go-smtp reads, after TLS is removed; the one place go-smtp
// shows that is its Debug writer, which copies every byte it reads (an
// io.TeeReader) and every reply it writes. Each connection therefore gets a
// go-smtp Server of its own with a guard as its Debug writer.
//
// An over-long command line is answered from here ("500 5.4.0 Too long
// line, closing connection", onTooLong) and the connection closed; the
// error the tee's Write returns then ends go-smtp's read. go-smtp cannot be
// left to answer: bufio, under its line reader, hands the bytes it holds
// over as a line and drops a read error that comes with them, so go-smtp
// would first run the start of the line as a command. Whatever it makes
// of the bytes it holds now reaches no one.
//
// The guard follows the byte stream as go-smtp parses it: command lines,
// the DATA body up to <CRLF>.<CRLF> once go-smtp has answered 354, and BDAT
// chunks of the size their command line gives. It keeps no more of a line
// than the few bytes needed to recognise DATA and BDAT, and logs nothing
// (the stream carries AUTH secrets).
//
// Reads and replies arrive through the same Write; trackedConn tells them
// apart: a reply is a Write right after go-smtp wrote exactly that many
// bytes (plus the TLS record overhead) to the connection, with no read in
// between, and it has the shape of a reply line. (TLS's own writes, such
// as the answer to a TLS 1.3 KeyUpdate, never match both.)
type lineGuard struct {
	maxLine int
	// onDataStart runs when go-smtp has answered DATA with 354 and is about
	// to read the body; onCommandRead when it starts reading a command line
	// (see worker.newServer).
	onDataStart, onCommandRead func()
	// onTooLong answers an over-long command line and closes the
	// connection.
	onTooLong func()

	mu sync.Mutex
	// overhead is what TLS adds to one record on this connection: a reply
	// of n bytes is written as n+overhead bytes.
	overhead int
	// lastWrite is the size of the last write to the connection that no
	// read or tee has followed yet, or -1.
	lastWrite int

	mode    guardMode
	line    int    // bytes of the current command line so far
	head    []byte // its first bytes, to recognise DATA and BDAT
	chunk   uint64 // BDAT bytes still to come
	dot     dotState
	pending []byte // bytes after a DATA line, before go-smtp's answer
	failed  bool
	// lines counts command lines (and DATA bodies) go-smtp has to answer,
	// replies its final replies ("NNN text", the greeting being reply 0);
	// dataLine is the number of the DATA line whose answer is awaited.
	// Pipelined commands make replies lag behind lines.
	lines, replies, dataLine int
}

type guardMode uint8

const (
	modeCommand guardMode = iota
	// modeDataPending follows a DATA command line until go-smtp answers:
	// 354 starts the body, anything else means more commands.
	modeDataPending
	modeData
	modeChunk
)

const (
	// headBytes is how much of a command line is kept: enough for any
	// "BDAT <size> LAST" a client sends.
	headBytes = 64
	// maxPending bounds what a client may send after DATA before it has
	// its answer: go-smtp reads nothing more meanwhile, so this is at most
	// one read ahead.
	maxPending = 64 << 10
)

func newLineGuard(maxLine int) *lineGuard {
	return &lineGuard{maxLine: maxLine, lastWrite: -1, head: make([]byte, 0, headBytes), replies: -1}
}

// Write receives what go-smtp's Debug writer gets: every read and every
// reply, in order.
func (g *lineGuard) Write(p []byte) (int, error) {
	g.mu.Lock()
	isReply := g.lastWrite >= 0 && g.lastWrite == len(p)+g.overhead && replyShaped(p)
	g.lastWrite = -1
	var start, refuse bool
	if isReply {
		start = g.replied(p)
	} else {
		g.read(p)
		refuse = g.failed
	}
	g.mu.Unlock()
	// go-smtp reads the message size limit right after its 354 and before
	// the body; the hook changes it, so it runs where go-smtp is (this
	// goroutine), outside the lock.
	if start && g.onDataStart != nil {
		g.onDataStart()
	}
	if refuse {
		if g.onTooLong != nil {
			g.onTooLong()
		}
		return 0, smtp.ErrTooLongLine
	}
	return len(p), nil
}

// wrote and readBytes are called by trackedConn for what crosses the socket.
func (g *lineGuard) wrote(n int) {
	g.mu.Lock()
	g.lastWrite = n
	g.mu.Unlock()
}

func (g *lineGuard) readBytes() {
	g.mu.Lock()
	g.lastWrite = -1
	g.mu.Unlock()
}

// tlsUp starts afresh when a TLS handshake completes: go-smtp forgets what
// it had buffered before STARTTLS, and replies now cost TLS overhead.
func (g *lineGuard) tlsUp(cs tls.ConnectionState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.overhead = tlsRecordOverhead(cs)
	g.lastWrite = -1
	if g.replies >= 0 {
		// STARTTLS: go-smtp does not greet again. (With implicit TLS the
		// greeting, reply 0, is still to come.)
		g.lines, g.replies = 0, 0
	}
	g.toCommand()
}

// commandRead is called when go-smtp starts reading a command line.
func (g *lineGuard) commandRead() {
	if g.onCommandRead != nil {
		g.onCommandRead()
	}
}

// tlsRecordOverhead is the bytes one TLS record adds for the AEAD suites
// this receiver offers.
func tlsRecordOverhead(cs tls.ConnectionState) int {
	const header, tag = 5, 16
	switch {
	case cs.Version == tls.VersionTLS13:
		return header + 1 + tag // inner content type
	case strings.Contains(tls.CipherSuiteName(cs.CipherSuite), "CHACHA20"):
		return header + tag
	default:
		return header + 8 + tag // AES-GCM's explicit nonce
	}
}

// replyShaped says whether p is one reply line as go-smtp writes them:
// "NNN text\r\n" or "NNN-text\r\n".
func replyShaped(p []byte) bool {
	return len(p) >= 6 && p[0] >= '2' && p[0] <= '5' && isDigit(p[1]) && isDigit(p[2]) &&
		(p[3] == ' ' || p[3] == '-') && bytes.IndexByte(p, '\n') == len(p)-1 && p[len(p)-2] == '\r'
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// replied handles a reply go-smtp wrote. It reports whether a DATA body
// starts here.
func (g *lineGuard) replied(p []byte) (start bool) {
	if p[3] != ' ' {
		return false // a line of a multi-line reply
	}
	g.replies++
	if g.mode != modeDataPending || g.replies != g.dataLine {
		return false
	}
	if bytes.HasPrefix(p, []byte("354 ")) {
		g.resume(modeData)
		return true
	}
	g.resume(modeCommand)
	return false
}

// resume leaves modeDataPending and runs what arrived meanwhile through the
// mode go-smtp has chosen.
func (g *lineGuard) resume(m guardMode) {
	pending := g.pending
	g.pending = nil
	if m == modeData {
		g.mode, g.dot = modeData, dotLineStart
	} else {
		g.toCommand()
	}
	g.read(pending)
}

func (g *lineGuard) toCommand() {
	g.mode, g.line, g.head, g.pending = modeCommand, 0, g.head[:0], nil
}

// read follows bytes go-smtp has read.
func (g *lineGuard) read(p []byte) {
	for len(p) > 0 {
		switch g.mode {
		case modeCommand:
			p = g.commandBytes(p)
		case modeDataPending:
			if len(g.pending)+len(p) > maxPending {
				g.failed = true
				return
			}
			g.pending = append(g.pending, p...)
			p = nil
		case modeData:
			p = g.dataBytes(p)
		case modeChunk:
			n := uint64(len(p))
			if n > g.chunk {
				n = g.chunk
			}
			g.chunk -= n
			p = p[n:]
			if g.chunk == 0 {
				g.toCommand()
			}
		}
	}
}

// commandBytes counts one command line; it returns what follows the line.
func (g *lineGuard) commandBytes(p []byte) []byte {
	i := bytes.IndexByte(p, '\n')
	n := len(p)
	if i >= 0 {
		n = i + 1
	}
	g.line += n
	if room := headBytes - len(g.head); room > 0 {
		g.head = append(g.head, p[:min(n, room)]...)
	}
	if g.line > g.maxLine {
		g.failed = true
		return nil
	}
	if i < 0 {
		return nil
	}
	g.commandDone()
	return p[n:]
}

// commandDone looks at a complete command line the way go-smtp parses it.
// Only lines go-smtp itself takes for DATA and BDAT change the mode: taking
// too few is safe (their content counts as command lines and may be
// refused), taking too many would leave command lines unlimited.
func (g *lineGuard) commandDone() {
	g.lines++
	if !transferVerb(g.head) {
		// MAIL, RCPT, EHLO…: nothing to parse (and no string to build
		// for every command line).
		g.line, g.head = 0, g.head[:0]
		return
	}
	verb, arg, ok := splitCommand(string(g.head), g.line <= headBytes)
	g.line, g.head = 0, g.head[:0]
	if !ok {
		return
	}
	switch verb {
	case "DATA":
		g.mode, g.dataLine = modeDataPending, g.lines
	case "BDAT":
		if size, ok := bdatSize(arg); ok && size > 0 {
			g.mode, g.chunk = modeChunk, size
		}
	}
}

// transferVerb says whether a line starts with DATA or BDAT, in any case:
// the only commands that change the mode.
func transferVerb(head []byte) bool {
	return len(head) >= 4 && (bytes.EqualFold(head[:4], []byte("DATA")) || bytes.EqualFold(head[:4], []byte("BDAT")))
}

// splitCommand splits a whole command line into its upper-case verb and
// argument as go-smtp does; complete is false when the line was longer
// than what was kept of it.
func splitCommand(line string, complete bool) (verb, arg string, ok bool) {
	if !complete {
		return "", "", false
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(strings.ToUpper(line), "STARTTLS"):
		return "STARTTLS", "", true
	case len(line) == 4:
		return strings.ToUpper(line), "", true
	case len(line) < 6 || line[4] != ' ':
		return "", "", false
	}
	return strings.ToUpper(line[:4]), strings.TrimSpace(line[5:]), true
}

// bdatSize is the chunk size of a BDAT command go-smtp accepts for reading:
// "<size>" or "<size> LAST", the size fitting 32 bits. go-smtp reads (or
// discards) exactly that many bytes after such a line, whatever it answers.
func bdatSize(arg string) (uint64, bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "LAST")) {
		return 0, false
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	return n, err == nil
}

// dataBytes follows the DATA body; it returns what follows the end marker.
// Inside a line only a CR can change the state, so the bytes up to the
// next CR are skipped at once (the body is most of what a session reads).
func (g *lineGuard) dataBytes(p []byte) []byte {
	for i := 0; i < len(p); i++ {
		if g.dot == dotText {
			j := bytes.IndexByte(p[i:], '\r')
			if j < 0 {
				return nil
			}
			i += j
		}
		var done bool
		g.dot, done = g.dot.next(p[i])
		if done {
			g.lines++ // the message gets a reply of its own
			g.toCommand()
			return p[i+1:]
		}
	}
	return nil
}

// dotState follows the DATA framing exactly as go-smtp's reader does: the
// body ends at a line "." right after a CRLF (or at its very start); a bare
// CR or LF never starts a line.
type dotState uint8

const (
	dotLineStart dotState = iota
	dotDot                // "." at a line start
	dotDotCR              // ".\r" at a line start
	dotCR                 // "\r"
	dotText               // inside a line
)

func (d dotState) next(b byte) (dotState, bool) {
	switch d {
	case dotLineStart:
		switch b {
		case '.':
			return dotDot, false
		case '\r':
			return dotCR, false
		}
	case dotDot:
		if b == '\r' {
			return dotDotCR, false
		}
	case dotDotCR:
		if b == '\n' {
			return dotLineStart, true
		}
	case dotCR:
		if b == '\n' {
			return dotLineStart, false
		}
	case dotText:
		if b == '\r' {
			return dotCR, false
		}
	}
	return dotText, false
}
