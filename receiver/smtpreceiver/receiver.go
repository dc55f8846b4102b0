package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/smtpreceiver/smtpreceiver/internal/mailconv"
	"github.com/smtpreceiver/smtpreceiver/internal/senderauth"
	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadata"
)

const (
	// defaultShutdownGrace is how long Shutdown lets messages in flight
	// finish (unless its context ends sooner): the collector's own shutdown
	// context has no deadline, and a blocked pipeline must not keep the
	// process alive.
	defaultShutdownGrace = 10 * time.Second
	// replyWait is how long sessions whose pipeline call was cancelled get
	// to send their 421 before their connections are closed.
	replyWait = time.Second
	// forcedCloseWait bounds how long Shutdown waits for sessions after it
	// has closed their connections.
	forcedCloseWait = 5 * time.Second
)

type smtpReceiver struct {
	set       receiver.Settings
	cfg       *Config
	next      consumer.Logs
	obsrecv   *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder

	resource        pcommon.Resource
	convOpts        mailconv.Options
	reports         *reportReader // nil when reports.enabled is false
	pipelineTimeout time.Duration
	shutdownGrace   time.Duration
	creds           credentials
	throttle        *authThrottle
	secLog          *securityLog
	limiter         *connLimiter
	recipients      *recipientFilter
	tlsConfig       *tls.Config
	// senderAuth checks SPF, DKIM and DMARC; nil when sender_auth is off.
	senderAuth    *senderauth.Checker
	senderAuthDNS *senderauth.DNS

	// consumeCtx is the parent of every ConsumeLogs; Shutdown cancels it
	// only when its own deadline has passed.
	consumeCtx    context.Context
	cancelConsume context.CancelFunc

	workers  []*worker
	serveWG  sync.WaitGroup
	statsWG  sync.WaitGroup
	stopStat chan struct{}

	// domain is the name in the greeting, looked up once (not per
	// connection).
	domain      string
	conns       *connSet
	handlers    *handlerReaper
	readBuffers *readBuffers
	// now is the clock of the transfer limits (time.Now but in tests).
	now func() time.Time
}

// worker is one SMTP listener. Each of its connections gets a go-smtp
// server of its own (see lineGuard).
type worker struct {
	r        *smtpReceiver
	index    int
	ln       net.Listener
	errorLog *log.Logger
	stats    workerStats
	attrs    workerAttrs
	startTLS *tls.Config // for STARTTLS; nil without TLS or with implicit TLS
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*smtpReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "tcp",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &smtpReceiver{
		set:             set,
		cfg:             cfg,
		next:            next,
		obsrecv:         obsrecv,
		resource:        deviceResource(set.ID, cfg),
		convOpts:        conversionOptions(cfg),
		reports:         newReportReader(cfg),
		recipients:      newRecipientFilter(cfg.AcceptedRecipients),
		pipelineTimeout: cfg.pipelineTimeout(),
		shutdownGrace:   defaultShutdownGrace,
		secLog:          newSecurityLog(set.Logger),
		domain:          greetingDomain(cfg.Domain),
		conns:           newConnSet(),
		readBuffers:     newReadBuffers(cfg.BufferSize),
		now:             time.Now,
	}, nil
}

// deviceResource carries the device identity onto every record.
func deviceResource(id component.ID, cfg *Config) pcommon.Resource {
	res := pcommon.NewResource()
	attrs := res.Attributes()
	name := cfg.Name
	if name == "" {
		name = id.Name()
	}
	if name == "" {
		name = id.String()
	}
	attrs.PutStr("device.type", "smtp")
	attrs.PutStr("device.name", name)
	if cfg.ID != 0 {
		attrs.PutInt("device.id", cfg.ID)
	}
	if cfg.Description != "" {
		attrs.PutStr("device.description", cfg.Description)
	}
	if len(cfg.Tags) > 0 {
		tags := attrs.PutEmptySlice("device.tags")
		for _, t := range cfg.Tags {
			tags.AppendEmpty().SetStr(t)
		}
	}
	return res
}

func conversionOptions(cfg *Config) mailconv.Options {
	return mailconv.Options{
		BodyFormat:                cfg.BodyFormat,
		HTMLToText:                cfg.HTMLToText,
		MaxBodyBytes:              cfg.MaxBodyBytes,
		MaxHeaderBytes:            cfg.MaxHeaderBytes,
		MaxDepth:                  cfg.MaxMIMEDepth,
		MaxParts:                  cfg.MaxMIMEParts,
		IncludeAttachmentContent:  cfg.IncludeAttachmentContent,
		MaxAttachmentContentBytes: cfg.MaxAttachmentContentBytes,
	}
}

// Start binds every listener before it returns, so a port in use fails the
// collector's start with a clear error; serving happens in goroutines.
func (r *smtpReceiver) Start(ctx context.Context, host component.Host) error {
	logger := r.set.Logger
	if !r.cfg.Status {
		logger.Info("SMTP device is disabled (status: false); no listener started")
		return nil
	}

	var err error
	if r.creds, err = loadCredentials(r.cfg); err != nil {
		return err
	}
	if r.cfg.TLS.Status {
		if r.tlsConfig, err = r.loadTLS(ctx); err != nil {
			return err
		}
	} else if r.cfg.authEnabled() {
		logger.Warn("AUTH is enabled without TLS: passwords cross the network in clear text; set tls.status: true with cert_name and key_name")
	}
	if r.telemetry, err = metadata.NewTelemetryBuilder(r.set.TelemetrySettings); err != nil {
		return err
	}
	r.limiter = newConnLimiter(r.cfg)
	r.throttle = newAuthThrottle(r.limiter.isTrusted)
	if r.cfg.SenderAuth.Enabled {
		if r.senderAuth, r.senderAuthDNS, err = r.newSenderAuth(); err != nil {
			r.telemetry.Shutdown()
			return err
		}
	}
	r.consumeCtx, r.cancelConsume = context.WithCancel(context.Background())

	count := 1
	if r.cfg.Reuse {
		count = r.cfg.Workers
		if cores := runtime.NumCPU(); count > cores {
			logger.Info("workers capped at the number of CPU cores",
				zap.Int("workers", r.cfg.Workers), zap.Int("cores", cores))
			count = cores
		}
	}

	if err := r.listenAll(ctx, count); err != nil {
		r.closeListeners()
		r.workers = nil
		ports.release(r.set.ID)
		r.cancelConsume()
		r.closeSenderAuth()
		r.telemetry.Shutdown()
		return err
	}

	r.handlers = startHandlerReaper()
	for _, w := range r.workers {
		r.serveWG.Add(1)
		go func() {
			defer r.serveWG.Done()
			w.serve(host)
		}()
	}
	r.stopStat = make(chan struct{})
	r.statsWG.Add(1)
	go func() {
		defer r.statsWG.Done()
		r.reportStats(r.cfg.statsInterval())
	}()

	logger.Info("SMTP receiver listening",
		zap.String("address", r.workers[0].ln.Addr().String()),
		zap.Int("workers", len(r.workers)),
		zap.Bool("tls", r.cfg.TLS.Status),
		zap.Bool("implicit_tls", r.cfg.TLS.Implicit),
		zap.Bool("auth", r.cfg.authEnabled()))
	if warning := openSinkWarning(r.cfg, r.workers[0].ln.Addr()); warning != "" {
		logger.Warn(warning)
	}
	return nil
}

// listenAll binds the listeners of count workers on one address and port,
// after making sure no other receiver of this collector and no other
// socket already listens there.
func (r *smtpReceiver) listenAll(ctx context.Context, count int) error {
	host := strings.Trim(r.cfg.Address, "[]")
	addr := r.cfg.listenAddress()
	if port := r.cfg.port(); port != 0 {
		if err := ports.claim(r.set.ID, newPortKey(host, port)); err != nil {
			return err
		}
		if r.cfg.Reuse {
			if err := probeFree(ctx, addr); err != nil {
				return r.listenError(addr, err)
			}
		}
	}
	for i := range count {
		ln, err := listen(ctx, addr, r.cfg.Reuse, r.cfg.SocketReceiveBuffer)
		if err != nil {
			return r.listenError(addr, err)
		}
		if i == 0 && r.cfg.port() == 0 {
			// Port 0 picks a free port; the other workers share that one.
			addr = ln.Addr().String()
			if err := ports.claim(r.set.ID, listenerKey(host, ln)); err != nil {
				_ = ln.Close()
				return err
			}
		}
		r.workers = append(r.workers, r.newWorker(i, ln))
	}
	return nil
}

func (r *smtpReceiver) listenError(addr string, err error) error {
	return fmt.Errorf("smtp receiver %s: cannot listen on %s: %w%s", r.set.ID, addr, err, listenHint(err))
}

func listenHint(err error) string {
	switch {
	case isAddrInUse(err):
		return " (another process or socket already uses this port: stop it or choose another port; with reuse: true only the workers of one receiver may share it)"
	case isPermission(err):
		return " (ports below 1024 need root or CAP_NET_BIND_SERVICE: sudo setcap 'cap_net_bind_service=+ep' <collector binary>, or use a port above 1023)"
	}
	return ""
}

func (r *smtpReceiver) newWorker(index int, ln net.Listener) *worker {
	w := &worker{r: r, index: index, attrs: newWorkerAttrs(r.set.ID, index)}
	var implicit *tls.Config
	if r.tlsConfig != nil && r.cfg.TLS.Implicit {
		implicit = r.tlsConfig
	}
	if r.tlsConfig != nil && !r.cfg.TLS.Implicit {
		w.startTLS = r.tlsConfig
	}
	w.ln = &limitListener{Listener: newProxyListener(ln, w), w: w, tlsConfig: implicit}
	// go-smtp's own log lines carry connection errors of misbehaving clients;
	// they belong at debug level (a level zap knows, so no error).
	w.errorLog, _ = zap.NewStdLogAt(r.set.Logger.With(zap.Int("worker", index)), zap.DebugLevel)
	return w
}

// newServer is the go-smtp server of one connection (its message size
// limit changes during the session, see below).
func (w *worker) newServer(tc *trackedConn) *smtp.Server {
	cfg := w.r.cfg
	s := smtp.NewServer(&backend{w: w})
	s.Domain = w.r.domain
	s.MaxMessageBytes = cfg.MaxMessageBytes
	// Lines are limited by the lineGuard: command lines to max_line_length,
	// message lines only by max_message_bytes.
	s.MaxLineLength = 0
	// Recipients are counted in the session, which also records the metric.
	s.MaxRecipients = 0
	s.ReadTimeout = cfg.idleTimeout()
	s.WriteTimeout = cfg.idleTimeout()
	s.EnableSMTPUTF8 = true
	// TLS is plainConn's: go-smtp sees plain text only and never offers
	// STARTTLS itself. So AUTH is always "allowed" as far as go-smtp
	// knows, and the session holds it back until TLS is up when TLS is
	// configured (without TLS, the device's plain username/password still
	// works; Start has logged a warning).
	s.AllowInsecureAuth = true
	s.ErrorLog = w.errorLog

	// go-smtp lets DATA bodies reach MaxMessageBytes minus one byte only
	// (its reader fails as the limit is reached, before it could see the
	// end of the message), while SIZE= and BDAT accept exactly the limit.
	// So for a DATA body the limit is raised by one, between the 354 and
	// the next command, and the session enforces the exact limit itself.
	tc.guard.onDataStart = func() { s.MaxMessageBytes = cfg.MaxMessageBytes + 1 }
	tc.guard.onCommandRead = func() { s.MaxMessageBytes = cfg.MaxMessageBytes }
	return s
}

// serve accepts connections until the listener closes.
func (w *worker) serve(host component.Host) {
	var delay time.Duration
	for {
		c, err := w.ln.Accept()
		if err == nil {
			delay = 0
			w.serveConn(c)
			continue
		}
		if w.r.conns.isStopping() {
			return
		}
		if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
			// Out of file descriptors and the like: wait and go on.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			w.r.set.Logger.Warn("SMTP accept failed; retrying", zap.Int("worker", w.index), zap.Error(err), zap.Duration("retry_in", delay))
			time.Sleep(delay)
			continue
		}
		w.listenerFailed(host, err)
		return
	}
}

// serveConn starts go-smtp's handler of one accepted connection. Serve
// returns at once: its listener has no second connection. The handler's
// goroutine runs on; once the connection has closed, the reaper waits for
// it to return.
func (w *worker) serveConn(c net.Conn) {
	tc := trackedConnOf(c)
	if tc == nil {
		_ = c.Close()
		return
	}
	s := w.newServer(tc)
	_ = s.Serve(&oneConnListener{conn: c})
	tc.served(s)
}

func (w *worker) listenerFailed(host component.Host, err error) {
	w.stats.failed.Store(true)
	w.r.set.Logger.Error("SMTP listener stopped", zap.Int("worker", w.index), zap.Error(err))
	// One failed worker leaves the others serving; the component is only
	// fatally broken when none is left.
	if w.r.allWorkersFailed() {
		componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
	} else {
		componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(err))
	}
}

// oneConnListener hands go-smtp a single connection; its next Accept ends
// go-smtp's Serve.
type oneConnListener struct {
	conn     net.Conn
	accepted bool
}

// errHandedOver ends Serve once its connection is handed to the handler.
var errHandedOver = errors.New("connection handed to go-smtp")

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.accepted {
		return nil, errHandedOver
	}
	l.accepted = true
	return l.conn, nil
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

func (r *smtpReceiver) allWorkersFailed() bool {
	failed := 0
	for _, w := range r.workers {
		if w.stats.failed.Load() {
			failed++
		}
	}
	return failed == len(r.workers)
}

func (r *smtpReceiver) closeListeners() {
	for _, w := range r.workers {
		_ = w.ln.Close()
	}
}

// Shutdown stops accepting, lets sessions in DATA finish their message
// within ctx (idle sessions get 421 at once), then closes what is left.
func (r *smtpReceiver) Shutdown(ctx context.Context) error {
	if len(r.workers) == 0 {
		return nil // never started, or disabled
	}
	conns, first := r.conns.stop()
	if !first {
		return nil
	}

	r.closeListeners()
	for _, c := range conns {
		c.drain()
	}

	var err error
	grace := time.NewTimer(r.shutdownGrace)
	defer grace.Stop()
	if !r.conns.wait(ctx.Done(), grace.C) {
		err = ctx.Err()
		// Pipeline calls still running end now; their sessions answer 421.
		r.cancelConsume()
		r.conns.wait(nil, time.After(replyWait))
	}
	r.conns.closeAll()
	r.serveWG.Wait() // the accept loops
	if !r.conns.wait(nil, time.After(forcedCloseWait)) {
		r.set.Logger.Warn("SMTP sessions still running after shutdown")
	}
	// go-smtp's handlers of the closed connections.
	r.handlers.stop()
	ports.release(r.set.ID)
	r.cancelConsume()
	r.closeSenderAuth()
	close(r.stopStat)
	r.statsWG.Wait()
	r.telemetry.Shutdown()
	return err
}

// greetingDomain is the name in the 220 greeting and EHLO reply: the
// configured domain, else this machine's host name.
func greetingDomain(configured string) string {
	if configured != "" {
		return configured
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
