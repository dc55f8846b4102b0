package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/reports"
)

// ReportsConfig turns the reports machines mail to machines (DMARC
// aggregate, TLS-RPT, ARF feedback, DSN bounces) into one record per row,
// next to the email's own record. See docs/reports.md.
type ReportsConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Kinds are the report kinds read: dmarc_aggregate, tlsrpt, feedback,
	// dsn.
	Kinds []string `mapstructure:"kinds"`
	// KeepEmailRecord false drops the email's own record when its report
	// was read completely (a report that could not be read keeps it).
	KeepEmailRecord      bool  `mapstructure:"keep_email_record"`
	MaxCompressedBytes   int64 `mapstructure:"max_compressed_bytes"`
	MaxDecompressedBytes int64 `mapstructure:"max_decompressed_bytes"`
	MaxRows              int   `mapstructure:"max_rows"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func defaultReportsConfig() ReportsConfig {
	d := reports.DefaultLimits()
	return ReportsConfig{
		Enabled:              true,
		Kinds:                slices.Clone(reports.AllKinds),
		KeepEmailRecord:      true,
		MaxCompressedBytes:   d.MaxCompressedBytes,
		MaxDecompressedBytes: d.MaxDecompressedBytes,
		MaxRows:              d.MaxRows,
	}
}

func (c *ReportsConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if len(c.Kinds) == 0 {
		errs = append(errs, fmt.Errorf("reports.kinds: is empty; list the kinds to read (%s) or set reports.enabled: false", strings.Join(reports.AllKinds, ", ")))
	}
	for i, k := range c.Kinds {
		if !slices.Contains(reports.AllKinds, k) {
			errs = append(errs, fmt.Errorf("reports.kinds[%d]: unknown kind %q; use one of %s", i, k, strings.Join(reports.AllKinds, ", ")))
		}
	}
	for _, p := range []struct {
		field string
		value int64
		fix   string
	}{
		{"reports.max_compressed_bytes", c.MaxCompressedBytes, "bytes, e.g. max_compressed_bytes: 10485760"},
		{"reports.max_decompressed_bytes", c.MaxDecompressedBytes, "bytes, e.g. max_decompressed_bytes: 67108864"},
		{"reports.max_rows", int64(c.MaxRows), "e.g. max_rows: 100000"},
	} {
		if p.value <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be greater than 0, got %d; set it in %s", p.field, p.value, p.fix))
		}
	}
	return errors.Join(errs...)
}

// reportReader is the receiver's report stage: it keeps a bounded copy of
// each message while mailconv streams it, then reads the reports in it.
type reportReader struct {
	opts      reports.Options
	keepEmail bool
	// window is how much of one message is kept: a report attachment of
	// max_compressed_bytes in base64, plus room for the rest of the mail.
	window int64
	// budget bounds the bytes all messages in flight keep together, so
	// that many large messages at once cannot exhaust memory.
	budget int64
	inUse  atomic.Int64
	// slots: at most `workers` reports are expanded at once.
	slots chan struct{}
}

// reportWindowSlack is the room left for headers and other parts.
const reportWindowSlack = 1 << 20

func newReportReader(cfg *Config) *reportReader {
	rc := cfg.Reports
	if !rc.Enabled {
		return nil
	}
	window := rc.MaxCompressedBytes/3*4 + reportWindowSlack
	if window > cfg.MaxMessageBytes {
		window = cfg.MaxMessageBytes
	}
	workers := max(cfg.Workers, 1)
	return &reportReader{
		opts: reports.Options{Kinds: slices.Clone(rc.Kinds), Limits: reports.Limits{
			MaxCompressedBytes:   rc.MaxCompressedBytes,
			MaxDecompressedBytes: rc.MaxDecompressedBytes,
			MaxRows:              rc.MaxRows,
		}},
		keepEmail: rc.KeepEmailRecord,
		window:    window,
		budget:    2 * int64(workers) * window,
		slots:     make(chan struct{}, workers),
	}
}

// reportSpool is the copy of one message. It never fails a write: the
// message must be received whatever happens to the copy.
type reportSpool struct {
	rr        *reportReader
	buf       []byte
	held      int64
	tooLong   bool // the message is longer than the window
	busy      bool // the shared budget was used up by other messages
	noReport  bool // the top-level header says it cannot carry a report
	headerEnd int  // where the top-level header ends in buf, 0 until seen
	scanned   int  // buf[:scanned] has no header end (less the last 3 bytes)
}

// spool starts the copy of one message. declared is the size the client
// announced with MAIL SIZE= (0: none). A message announced larger than the
// window is not copied at all: without that, a large attachment was copied
// up to the window (a trail of grown buffers, about 60 MiB of peak RSS for
// one 25 MiB message) only to be given up. The announcement is only
// trusted to skip the copy, never to size a buffer: a client could announce
// the window and send a few bytes.
func (rr *reportReader) spool(declared int64) *reportSpool {
	return &reportSpool{rr: rr, tooLong: declared > rr.window}
}

func (s *reportSpool) Write(p []byte) (int, error) {
	if s.tooLong || s.busy || s.noReport {
		return len(p), nil
	}
	defer s.checkHeader()
	n := int64(len(p))
	switch {
	case int64(len(s.buf))+n > s.rr.window:
		s.tooLong = true
		s.release()
	case s.rr.inUse.Add(n) > s.rr.budget:
		s.rr.inUse.Add(-n)
		s.busy = true
		s.release()
	default:
		s.held += n
		s.buf = appendWithin(s.buf, p, s.rr.window)
	}
	return len(p), nil
}

// appendWithin appends p to buf, growing it by doubling as append does but
// never past limit (the copy is given up there anyway): a copy that reaches
// the window then costs the window, not the next power of two above it.
func appendWithin(buf, p []byte, limit int64) []byte {
	need := len(buf) + len(p)
	if need <= cap(buf) {
		return append(buf, p...)
	}
	grown := int(min(max(int64(2*cap(buf)), int64(need), 4096), max(limit, int64(need))))
	out := make([]byte, len(buf), grown)
	copy(out, buf)
	return append(out, p...)
}

// checkHeader gives the copy up as soon as the top-level header shows a
// type that never carries a report (plain text, HTML, alternative
// bodies): most mail then costs no more than its header.
func (s *reportSpool) checkHeader() {
	if s.headerEnd > 0 || s.buf == nil {
		return
	}
	// Only what arrived since the last look is searched (and the three
	// bytes before it, where a separator may have started).
	from := max(s.scanned-3, 0)
	stop := -1 // end of the blank line after the header
	if i := bytes.Index(s.buf[from:], []byte("\n\r\n")); i >= 0 {
		stop = from + i + 3
	}
	if i := bytes.Index(s.buf[from:], []byte("\n\n")); i >= 0 && (stop < 0 || from+i+2 < stop) {
		stop = from + i + 2
	}
	if stop < 0 {
		s.scanned = len(s.buf)
		return
	}
	s.headerEnd = stop
	msg, err := mail.ReadMessage(bytes.NewReader(s.buf[:stop]))
	if err != nil {
		return
	}
	mt, _, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	switch strings.ToLower(mt) {
	case "", "text/plain", "text/html", "multipart/alternative", "multipart/related":
		s.noReport = true
		s.release()
	}
}

// release gives the copy's bytes back to the shared budget.
func (s *reportSpool) release() {
	s.rr.inUse.Add(-s.held)
	s.held = 0
	s.buf = nil
}

// read extracts the reports of the spooled message into records, whose
// first record is the email's own, and marks that record. It takes at most
// timeout (and stops at shutdown: ctx).
func (rr *reportReader) read(ctx context.Context, spool *reportSpool, records plog.LogRecordSlice, w *worker, timeout time.Duration) {
	defer spool.release()
	email := records.At(0)
	if spool.noReport {
		return
	}
	if spool.tooLong || spool.busy {
		rr.notRead(spool, email, w)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case rr.slots <- struct{}{}:
		defer func() { <-rr.slots }()
	case <-ctx.Done():
		// Extract reports the time limit.
	}
	res := reports.Extract(ctx, spool.buf, emailOf(email), rr.opts, records)
	res.Annotate(email)
	w.reportsRead(res)
	if !rr.keepEmail && res.Rows > 0 && len(res.Errors) == 0 {
		first := true
		records.RemoveIf(func(plog.LogRecord) bool {
			drop := first
			first = false
			return drop
		})
	}
}

// notRead marks an email whose copy was given up when it may carry a
// report: the reader cannot know, and must not stay silent.
func (rr *reportReader) notRead(spool *reportSpool, email plog.LogRecord, w *worker) {
	ct, _ := email.Attributes().Get("email.content_type")
	switch mt := ct.Str(); {
	case mt == "multipart/report", strings.HasPrefix(mt, "application/"), mt == "text/xml":
	default:
		return
	}
	limit, msg := reports.LimitCompressedBytes, fmt.Sprintf("message larger than the %d bytes read for reports; reports not read", rr.window)
	if spool.busy {
		limit, msg = limitBusy, "too many large messages at once; reports not read"
	}
	res := reports.Result{Errors: []string{msg}, LimitHits: []string{limit}}
	res.Annotate(email)
	w.reportsRead(res)
}

// limitBusy counts messages whose reports were not read because the
// shared copy budget was in use.
const limitBusy = "busy"

// emailOf is what derived records copy from the email record.
func emailOf(email plog.LogRecord) reports.Email {
	attrs := email.Attributes()
	str := func(k string) string {
		v, _ := attrs.Get(k)
		return v.Str()
	}
	return reports.Email{
		ClientAddress: str("client.address"),
		MailFrom:      str("smtp.mail_from"),
		MessageID:     str("email.message_id"),
		ReceivedAt:    email.ObservedTimestamp().AsTime(),
	}
}

// reportsRead counts what one email's reports gave.
func (w *worker) reportsRead(res reports.Result) {
	ctx := context.Background()
	if res.Type != "" {
		kind := w.attrs.with("kind", res.Type)
		w.r.telemetry.SMTPReportsRead.Add(ctx, 1, kind)
		w.r.telemetry.SMTPReportRecords.Add(ctx, int64(res.Rows), kind)
	}
	for _, l := range res.LimitHits {
		w.r.telemetry.SMTPReportLimitHits.Add(ctx, 1, w.attrs.with("limit", l))
	}
}
