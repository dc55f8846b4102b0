package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bytes"
	"strconv"
	"strings"
)

// lineGuard limits command lines to max_line_length and leaves message
// content (DATA, BDAT chunks) to max_message_bytes alone.
//
// go-smtp's own MaxLineLength cannot do that: it applies to every line it
// reads, message lines included, and a long line inside DATA then fails
// the transfer with 451 and an extra, unrequested 500. So go-smtp's limit
// is off (MaxLineLength 0) and this guard does the work on the plain text
// plainConn hands go-smtp (feed) and on the replies go-smtp writes
// (replied).
//
// An over-long command line is answered from here ("500 5.4.0 Too long
// line, closing connection", onTooLong), the connection closed, and the
// bytes are never handed to go-smtp.
//
// The guard follows the byte stream as go-smtp parses it: command lines,
// the DATA body up to <CRLF>.<CRLF> once go-smtp has answered 354, and BDAT
// chunks of the size their command line gives. It keeps no more of a line
// than the few bytes needed to recognise a command, and logs nothing (the
// stream carries AUTH secrets). At the start of each command line it
// points out to plainConn the lines plainConn handles itself (lineStop).
type lineGuard struct {
	maxLine int
	// watchTLS makes feed stop at STARTTLS lines (TLS is configured).
	watchTLS bool
	// unwatched: the current line goes to go-smtp as it is (its end is
	// not coming, see plainConn.keepBack; or it answers an AUTH
	// challenge).
	unwatched bool
	// onDataStart runs when go-smtp has answered DATA with 354 and is about
	// to read the body; onCommandRead when it starts reading a command line
	// (see worker.newServer); onHello when an EHLO or HELO line goes to
	// go-smtp.
	onDataStart, onCommandRead, onHello func()
	// onTooLong answers an over-long command line and closes the
	// connection.
	onTooLong func()

	mode   guardMode
	line   int    // bytes of the current command line so far
	head   []byte // its first bytes, to recognise DATA and BDAT
	chunk  uint64 // BDAT bytes still to come
	dot    dotState
	failed bool
	// added is how many bytes of the current line plainConn added (a
	// postmaster's domain); they do not count against the limit.
	added int
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
	// maxHeldLine bounds the start of a line plainConn keeps back while it
	// may still become STARTTLS or RCPT TO:<postmaster> (with the line
	// limit, if lower). Each new read looks at what is held again, so a
	// client trickling a long line costs at most this much per byte; a
	// longer line goes to go-smtp as it is.
	maxHeldLine = 4 << 10
	// headBytes is how much of a command line is kept: enough for any
	// "BDAT <size> LAST" a client sends.
	headBytes = 64
)

func newLineGuard(maxLine int) *lineGuard {
	return &lineGuard{maxLine: maxLine, head: make([]byte, 0, headBytes), replies: -1}
}

// lineStop says why feed stopped before the end of its bytes.
type lineStop uint8

const (
	stopNone lineStop = iota
	// stopAfterData: a DATA line was fed; what follows waits for go-smtp's
	// answer, which decides whether it is message or commands.
	stopAfterData
	// stopStartTLS: the next line is a STARTTLS command.
	stopStartTLS
	// stopPostmaster: the next line is RCPT TO:<postmaster>.
	stopPostmaster
	// stopPartial: the next line is incomplete and may still become one
	// of those two.
	stopPartial
	// stopLongLine: the next command line is over max_line_length. The
	// lines before it go to go-smtp first, so that their replies reach the
	// client before the 500 that refuses it.
	stopLongLine
)

// feed follows bytes about to be handed to go-smtp. It returns how many of
// them it followed: all of them, unless it stopped (see lineStop). After
// an over-long command line it calls onTooLong and sets failed.
func (g *lineGuard) feed(p []byte) (int, lineStop) {
	done := 0
	for done < len(p) && !g.failed {
		if g.mode == modeCommand && g.line == 0 {
			if stop := g.watch(p[done:], done == 0); stop != stopNone {
				return done, stop
			}
		}
		wasCommand := g.mode == modeCommand
		done = len(p) - len(g.step(p[done:]))
		if wasCommand && g.mode == modeDataPending {
			return done, stopAfterData
		}
	}
	if g.failed && g.onTooLong != nil {
		g.onTooLong()
	}
	return done, stopNone
}

// watch looks at the start of a command line for what plainConn handles
// itself, and, unless the line is the first of p, whether it is over the
// limit already. A line it stops at is not followed yet: plainConn feeds
// what replaces it, or nothing.
func (g *lineGuard) watch(p []byte, first bool) lineStop {
	line, complete := p, false
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		line, complete = p[:i+1], true
	}
	if stop := g.special(line, complete); stop != stopNone {
		return stop
	}
	if !first && len(line) > g.maxLine+g.added {
		return stopLongLine
	}
	return stopNone
}

// special says whether a line is one plainConn handles (STARTTLS, RCPT
// TO:<postmaster>) or may still become one.
func (g *lineGuard) special(line []byte, complete bool) lineStop {
	if g.unwatched {
		return stopNone
	}
	if g.watchTLS {
		starttls := hasPrefixFold(line, "STARTTLS")
		switch {
		case starttls && complete:
			return stopStartTLS
		case !complete && (starttls && g.mayHold(line) || isPrefixFold(line, "STARTTLS")):
			return stopPartial
		}
	}
	switch _, state := postmasterRecipient(line); {
	case state == pathMatch:
		return stopPostmaster
	case state == pathMaybe && !complete && g.mayHold(line):
		return stopPartial
	}
	return stopNone
}

// mayHold says whether an incomplete line start may be kept back: it is
// within maxHeldLine and the line limit (beyond that it is refused as too
// long, or goes to go-smtp as it is).
func (g *lineGuard) mayHold(line []byte) bool {
	return len(line) <= min(maxHeldLine, g.maxLine+g.added)
}

// replied follows a reply line go-smtp writes (one line per write).
func (g *lineGuard) replied(p []byte) {
	if !replyShaped(p) {
		return
	}
	if bytes.HasPrefix(p, []byte("334 ")) {
		// An AUTH challenge: the next line is the client's SASL response,
		// which may be any base64, "STARTTLS…" included; not a command.
		g.unwatched = true
	}
	if g.recordReply(p) && g.onDataStart != nil {
		// go-smtp reads the message size limit right after its 354 and
		// before the body; the hook changes it.
		g.onDataStart()
	}
}

// bodyRead is called when a bodyReader has read a DATA body past the
// guard: the message gets a reply of its own, and commands follow.
func (g *lineGuard) bodyRead() {
	g.lines++
	g.toCommand()
}

// commandRead is called when go-smtp starts reading a command line.
func (g *lineGuard) commandRead() {
	if g.onCommandRead != nil {
		g.onCommandRead()
	}
}

// replyShaped says whether p is one reply line as go-smtp writes them:
// "NNN text\r\n" or "NNN-text\r\n".
func replyShaped(p []byte) bool {
	return len(p) >= 6 && p[0] >= '2' && p[0] <= '5' && isDigit(p[1]) && isDigit(p[2]) &&
		(p[3] == ' ' || p[3] == '-') && bytes.IndexByte(p, '\n') == len(p)-1 && p[len(p)-2] == '\r'
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// recordReply counts a reply line. It reports whether a DATA body starts
// here.
func (g *lineGuard) recordReply(p []byte) (start bool) {
	if p[3] != ' ' {
		return false // a line of a multi-line reply
	}
	g.replies++
	if g.mode != modeDataPending || g.replies != g.dataLine {
		return false
	}
	if bytes.HasPrefix(p, []byte("354 ")) {
		g.mode, g.dot = modeData, dotLineStart
		return true
	}
	g.toCommand()
	return false
}

func (g *lineGuard) toCommand() {
	g.mode, g.line, g.head, g.unwatched, g.added = modeCommand, 0, g.head[:0], false, 0
}

// step follows bytes in the current mode and returns those that belong to
// the next.
func (g *lineGuard) step(p []byte) []byte {
	switch g.mode {
	case modeCommand:
		return g.commandBytes(p)
	case modeDataPending:
		// Not reached: plainConn holds back what follows a DATA line
		// until go-smtp has answered it (stopAfterData). Should bytes
		// come anyway, they are held to the command-line limit, which
		// is the safe side.
		g.toCommand()
		return g.commandBytes(p)
	case modeData:
		return g.dataBytes(p)
	default: // modeChunk
		n := min(uint64(len(p)), g.chunk)
		g.chunk -= n
		if g.chunk == 0 {
			g.toCommand()
		}
		return p[n:]
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
	if g.line > g.maxLine+g.added {
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
	g.unwatched, g.added = false, 0
	if g.onHello != nil && helloVerb(g.head) {
		g.onHello()
	}
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

// helloVerb says whether a line is EHLO or HELO with an argument.
func helloVerb(head []byte) bool {
	return (hasPrefixFold(head, "EHLO ") || hasPrefixFold(head, "HELO ")) && len(bytes.TrimSpace(head[5:])) > 0
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
