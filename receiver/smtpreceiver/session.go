package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/smtpreceiver/smtpreceiver/internal/mailconv"
	"github.com/smtpreceiver/smtpreceiver/internal/senderauth"
	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadata"
)

// Replies of this receiver. They are declared once and returned unwrapped:
// go-smtp sends the text of any other error to the client.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errTLSRequired  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errAuthzID      = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed: authorization identity must be empty or the user name"}
	errTooManyAuth  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, closing connection"}
	errBadSender    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	errBadRecipient = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	errTooManyRcpts = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	errPipelineBusy = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure in the processing pipeline, try again later"}
	errPipelineNo   = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 3, 0}, Message: "Message rejected by the processing pipeline"}
	errShutdown     = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down, try again later"}
	errReadFailed   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message not received completely, try again"}
	errHelloFirst   = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Send EHLO first"}
)

// backend hands each SMTP connection of one worker a session.
type backend struct{ w *worker }

// NewSession runs at the client's first EHLO/HELO. The session lasts as
// long as the connection: STARTTLS (plainConn) tells it that TLS is up.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{w: b.w, r: b.w.r, smtpConn: c, helo: c.Hostname(), conn: trackedConnOf(c.Conn()), plain: plainConnOf(c.Conn())}
	if addr, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		s.remote = addr
	}
	if s.plain != nil {
		s.tls = s.plain.tlsState()
		s.plain.sess.Store(s)
	}
	return s, nil
}

// session is one SMTP conversation: it checks who may send, collects the
// envelope, and turns each message into a record the pipeline must accept
// before the client hears 250.
type session struct {
	w        *worker
	r        *smtpReceiver
	conn     *trackedConn
	plain    *plainConn
	smtpConn *smtp.Conn

	remote *net.TCPAddr

	// mu guards what go-smtp's command loop and a BDAT transfer, which
	// runs Data in a goroutine of its own, may touch at once.
	mu           sync.Mutex
	helo         string
	authUser     string
	authFailures int
	// tls is the TLS session's state, nil before TLS is up.
	tls *tls.ConnectionState
	// inMail is true from MAIL to the end of the transaction.
	inMail bool
	from   string
	to     []string
	// declaredSize is MAIL's SIZE= parameter, 0 when the client gave none.
	declaredSize int64
	// authCheck is the sender authentication of the current transaction,
	// started at MAIL; nil when off or skipped.
	authCheck *senderauth.Check

	// limit is the reader of the message being received, kept here so
	// that it is not allocated per message (one Data runs at a time).
	limit sizeLimitReader
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

// Reset runs after each message, on RSET, and on a repeated EHLO, whose
// name it picks up (go-smtp sets it just before).
func (s *session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.helo = s.smtpConn.Hostname()
	s.inMail = false
	s.from = ""
	s.to = nil
	s.declaredSize = 0
	s.abortSenderAuth()
}

func (s *session) Logout() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abortSenderAuth()
	return nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.r.cfg
	if s.needsHello() {
		return errHelloFirst
	}
	if cfg.requireTLS() && s.tls == nil {
		return errTLSRequired
	}
	if cfg.authEnabled() && s.authUser == "" {
		return errAuthRequired
	}
	if strings.ContainsRune(from, 0) {
		return errBadSender
	}
	s.from, s.inMail = from, true
	if opts != nil {
		s.declaredSize = opts.Size
	}
	s.abortSenderAuth()
	s.authCheck = s.startSenderAuth(from)
	return nil
}

// isPostmaster says whether to is this server's postmaster, which every
// server must accept (RFC 5321 4.5.1); a bare <postmaster> arrives here as
// postmaster@domain (plainConn).
func (s *session) isPostmaster(to string) bool {
	local, domain, ok := strings.Cut(to, "@")
	return ok && strings.EqualFold(local, "postmaster") && strings.EqualFold(domain, s.r.domain)
}

// needsHello says whether STARTTLS has happened since the client's last
// EHLO: everything said before TLS is forgotten (RFC 3207 4.2).
func (s *session) needsHello() bool {
	return s.plain != nil && s.plain.needHello.Load()
}

// tlsStarted is called by plainConn when STARTTLS has succeeded.
func (s *session) tlsStarted(state *tls.ConnectionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tls = state
	s.helo = ""
}

// inTransaction says whether MAIL has been accepted and the transaction
// not ended (STARTTLS is refused then).
func (s *session) inTransaction() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inMail
}

// tlsPending says whether TLS is configured but not up yet: AUTH waits.
func (s *session) tlsPending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.tlsConfig != nil && s.tls == nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to == "" || strings.ContainsRune(to, 0) {
		s.w.recipientRejected("invalid")
		return errBadRecipient
	}
	if !s.r.recipients.accepts(to) && !s.isPostmaster(to) {
		s.w.recipientRejected("not_accepted")
		return errUnknownRecipient
	}
	if len(s.to) >= s.r.cfg.MaxRecipients {
		s.w.recipientRejected("limit")
		return errTooManyRcpts
	}
	s.to = append(s.to, to)
	s.w.recipientAccepted()
	return nil
}

// Data converts the message and replies only after the pipeline has it.
func (s *session) Data(r io.Reader) error {
	if s.conn != nil {
		s.conn.beginData()
		defer s.conn.endData()
	}
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	s.r.resource.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(s.r.set.BuildInfo.Version)

	if s.plain != nil {
		if body := s.plain.takeBody(); body != nil {
			r = body // a run at a time, not go-smtp's byte at a time
			// What is left of a body refused early (too large) is read
			// here, still under the transfer's clock (data arriving keeps
			// the connection alive, min_data_rate and data_timeout apply),
			// before the transfer ends (endData, deferred earlier, runs
			// after this). An error is met again, and answered, when
			// go-smtp reads on.
			defer func() { _ = body.finish() }()
		}
	}
	s.limit = sizeLimitReader{r: r, left: s.r.cfg.MaxMessageBytes}
	var msg io.Reader = &s.limit
	var spool *reportSpool
	if s.r.reports != nil {
		// Reports are read from a bounded copy once mailconv has the
		// message; they become records of the same Logs.
		spool = s.r.reports.spool(s.sizeDeclared())
		defer spool.release()
		msg = io.TeeReader(msg, spool)
	}
	env := s.envelope()
	if ck := s.takeSenderAuth(); ck != nil {
		// DKIM hashes the exact bytes while they stream; the results land
		// on the record once the message has been read.
		defer ck.Abort()
		msg = io.TeeReader(msg, ck)
		env.Enrich = recordSenderAuth(ck)
	}
	res, err := mailconv.Convert(msg, env, s.r.convOpts, sl.LogRecords().AppendEmpty())
	s.w.bytesReceived(res.Size)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.w.messageRejected("size")
			return smtp.ErrDataTooLarge
		}
		if failure := s.transferFailure(); failure != nil {
			s.w.messageRejected(transferFailureReason(failure))
			return failure
		}
		s.w.messageRejected("read_error")
		s.r.set.Logger.Debug("message not received completely", zap.Stringer("client", s.remote), zap.Error(err))
		return errReadFailed
	}
	if len(res.ParseErrors) > 0 {
		s.w.parseError()
	}
	if spool != nil {
		s.r.reports.read(s.r.consumeCtx, spool, sl.LogRecords(), s.w, s.r.pipelineTimeout)
	}
	return s.consume(logs)
}

// sizeDeclared is the message size the client announced with MAIL SIZE=.
func (s *session) sizeDeclared() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.declaredSize
}

// transferFailure is the 421 of a transfer the connection found too slow
// or too long; the connection closes after it.
func (s *session) transferFailure() *smtp.SMTPError {
	if s.conn == nil {
		return nil
	}
	return s.conn.transferFailure()
}

func transferFailureReason(e *smtp.SMTPError) string {
	if e == errDataTooLong {
		return "data_timeout"
	}
	return "too_slow"
}

// sizeLimitReader passes at most max_message_bytes of message content and
// fails with 552 on the byte after: a message of exactly the limit is
// accepted, as with SIZE= and BDAT. What is counted is the message as the
// client sent it, after DATA's dot-stuffing is removed and without the
// final ".", every line's CRLF included.
type sizeLimitReader struct {
	r    io.Reader
	left int64
}

func (l *sizeLimitReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		l.left = -1
		return 0, smtp.ErrDataTooLarge
	}
	l.left -= int64(n)
	return n, err
}

// consume pushes one message into the pipeline and maps the outcome onto
// the reply: nil is 250, a permanent error 554, any other error 451, so the
// sender keeps the message and tries again later.
func (s *session) consume(logs plog.Logs) error {
	// A pipeline that blocks (an exporter retrying without a queue, a full
	// queue set to block) must not hold the client, nor a shutdown,
	// forever: past pipeline_timeout the client hears 451 and retries.
	ctx, cancel := context.WithTimeout(s.r.consumeCtx, s.r.pipelineTimeout)
	defer cancel()
	if s.remote != nil {
		ctx = client.NewContext(ctx, client.Info{Addr: s.remote})
	}
	ctx = s.r.obsrecv.StartLogsOp(ctx)
	start := time.Now()
	err := s.r.next.ConsumeLogs(ctx, logs)
	s.w.consumed(time.Since(start))
	s.r.obsrecv.EndLogsOp(ctx, "email", logs.LogRecordCount(), err)
	if err == nil {
		s.w.messageAccepted()
		return nil
	}
	s.r.set.Logger.Warn("logs pipeline did not accept a message", zap.Stringer("client", s.remote), zap.Error(err))
	switch {
	case s.r.consumeCtx.Err() != nil:
		s.w.messageRejected("shutdown")
		if s.conn != nil {
			s.conn.closeAfterReply()
		}
		return errShutdown
	case consumererror.IsPermanent(err):
		s.w.messageRejected("pipeline_refused")
		return errPipelineNo
	default:
		s.w.messageRejected("pipeline_failed")
		return errPipelineBusy
	}
}

func (s *session) envelope() mailconv.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	// To is not copied: Reset gives the session a new slice, and a later
	// append cannot change what this one shows.
	env := mailconv.Envelope{
		From:       s.from,
		To:         s.to,
		Helo:       s.helo,
		AuthUser:   s.authUser,
		ReceivedAt: time.Now(),
	}
	if s.remote != nil {
		env.Client = s.remote.AddrPort()
	}
	if s.tls != nil {
		env.TLSVersion = tlsVersionName(s.tls.Version)
		env.TLSCipher = tls.CipherSuiteName(s.tls.CipherSuite)
	}
	return env
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS12:
		return "1.2"
	}
	return strings.TrimPrefix(tls.VersionName(v), "TLS ")
}

// AuthMechanisms is asked by go-smtp for the EHLO reply: none before TLS
// when TLS is configured.
func (s *session) AuthMechanisms() []string {
	if s.r.creds == nil || s.tlsPending() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.r.creds == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	if s.needsHello() {
		return nil, errHelloFirst
	}
	if s.tlsPending() {
		return nil, errTLSRequired
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return plainAuthErrors{sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				if s.authFailed(sasl.Plain, "authorization identity differs from the user name") {
					return errTooManyAuth
				}
				return errAuthzID
			}
			return s.authenticate(sasl.Plain, username, password)
		})}, nil
	case sasl.Login:
		return plainAuthErrors{&loginServer{authenticate: func(username, password string) error {
			return s.authenticate(sasl.Login, username, password)
		}}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) authenticate(mech, username, password string) error {
	if s.r.creds.verify(username, password) {
		s.mu.Lock()
		s.authUser = username
		s.mu.Unlock()
		s.w.authAttempt(mech, true)
		return nil
	}
	if s.authFailed(mech, "invalid user name or password") {
		return errTooManyAuth
	}
	return smtp.ErrAuthFailed
}

// authFailed counts a failure, logs it, slows repeat offenders down, and
// reports whether the session has used up its attempts (it then closes
// after the reply).
func (s *session) authFailed(mech, reason string) bool {
	s.w.authAttempt(mech, false)
	s.mu.Lock()
	s.authFailures++
	failures := s.authFailures
	s.mu.Unlock()
	closing := failures >= s.r.cfg.MaxAuthFailures
	ip := s.clientIP()
	s.r.secLog.warn(ip, eventAuthFailed, "SMTP AUTH failed",
		zap.String("mechanism", mech), zap.String("reason", reason),
		zap.Int("failures_in_session", failures), zap.Bool("closing", closing))
	if s.conn != nil {
		if d := s.r.throttle.failed(ip); d > 0 {
			s.r.secLog.warn(ip, eventThrottled, "SMTP client throttled after failed AUTH",
				zap.Duration("delay", d), zap.String("mechanism", mech))
			time.Sleep(d)
		}
	}
	if !closing {
		return false
	}
	if s.conn != nil {
		s.conn.closeAfterReply()
	}
	return true
}

// clientIP is the client's address (from the PROXY header when there is
// one).
func (s *session) clientIP() netip.Addr {
	if s.conn != nil {
		return s.conn.ip
	}
	if s.remote != nil {
		if a, ok := netip.AddrFromSlice(s.remote.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
