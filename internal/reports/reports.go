// Package reports turns the reports that machines mail to machines into
// structured log records: DMARC aggregate reports (RFC 9990, RFC 7489
// appendix C and the pre-RFC draft), SMTP TLS reports (RFC 8460), ARF
// feedback and DMARC failure reports (RFC 5965, RFC 6591, RFC 9991) and
// delivery status notifications (RFC 3464, RFC 6533).
//
// It is pure: bytes in, records out. It opens no socket and knows nothing of
// the collector runtime besides pdata. Hostile input is bounded by Limits;
// every limit hit is named in Result.LimitHits and described in
// Result.Errors, never cut silently.
package reports

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// Kinds of report, as they appear in email.report.type and in the
// reports.kinds option.
const (
	KindDMARCAggregate = "dmarc_aggregate"
	KindTLSRPT         = "tlsrpt"
	KindFeedback       = "feedback"
	KindDSN            = "dsn"
)

// AllKinds lists every kind in the order the documentation uses.
var AllKinds = []string{KindDMARCAggregate, KindTLSRPT, KindFeedback, KindDSN}

// Names of the limits, as counted in self-metrics (attribute "limit").
const (
	LimitCompressedBytes   = "compressed_bytes"
	LimitDecompressedBytes = "decompressed_bytes"
	LimitZipEntries        = "zip_entries"
	LimitNesting           = "nesting"
	LimitRows              = "rows"
	LimitTime              = "time"
	LimitParts             = "parts"
)

// Limits bound the work one email may cause. Zero fields mean the default.
type Limits struct {
	MaxCompressedBytes   int64 // payload bytes of one report as attached (after transfer decoding)
	MaxDecompressedBytes int64 // bytes after all decompression layers
	MaxZipEntries        int   // entries in a zip's central directory
	MaxNesting           int   // compression layers (gzip in gzip counts two)
	MaxRows              int   // derived records per report
	MaxParts             int   // MIME parts looked at per email
}

// DefaultLimits are the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxCompressedBytes:   10 << 20,
		MaxDecompressedBytes: 64 << 20,
		MaxZipEntries:        4,
		MaxNesting:           2,
		MaxRows:              100_000,
		MaxParts:             100,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	l.MaxCompressedBytes = orDefault(l.MaxCompressedBytes, d.MaxCompressedBytes)
	l.MaxDecompressedBytes = orDefault(l.MaxDecompressedBytes, d.MaxDecompressedBytes)
	l.MaxZipEntries = orDefault(l.MaxZipEntries, d.MaxZipEntries)
	l.MaxNesting = orDefault(l.MaxNesting, d.MaxNesting)
	l.MaxRows = orDefault(l.MaxRows, d.MaxRows)
	l.MaxParts = orDefault(l.MaxParts, d.MaxParts)
	return l
}

// orDefault: a zero or negative limit means the default, so that no limit
// can be switched off by accident.
func orDefault[T int | int64](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Options select the kinds to read and the limits. A nil Kinds means all.
type Options struct {
	Kinds  []string
	Limits Limits
}

func (o Options) wants(kind string) bool {
	if o.Kinds == nil {
		return true
	}
	for _, k := range o.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Email is what every derived record copies from the email that carried it.
type Email struct {
	ClientAddress string
	MailFrom      string
	MessageID     string
	ReceivedAt    time.Time
}

// Result summarizes what was found in one email.
type Result struct {
	Type      string   // kind of the first report found, "" when none
	Rows      int      // derived records appended
	Errors    []string // what could not be read; rows before a problem are kept
	LimitHits []string // names of the limits hit (one entry per hit)
	Partial   bool     // some report was only read in part
}

// Found reports whether the email carried a report or a problem reading one.
func (r Result) Found() bool { return r.Type != "" || len(r.Errors) > 0 }

// Annotate puts email.report.* on the email's own record.
func (r Result) Annotate(lr plog.LogRecord) {
	attrs := lr.Attributes()
	if r.Type != "" {
		attrs.PutStr("email.report.type", r.Type)
		attrs.PutInt("email.report.rows", int64(r.Rows))
	}
	if len(r.Errors) > 0 {
		attrs.PutStr("email.report.error", strings.Join(r.Errors, "; "))
	}
	if r.Partial {
		attrs.PutBool("email.report.partial", true)
	}
}

// Extract reads the reports in msg (a whole RFC 5322 message) and appends
// one record per report row to out. It never fails: problems are in the
// Result. ctx bounds the time spent; when it ends, what was read is kept and
// the time limit is reported.
func Extract(ctx context.Context, msg []byte, email Email, opts Options, out plog.LogRecordSlice) (res Result) {
	x := &extraction{
		ctx:    ctx,
		email:  email,
		opts:   opts,
		limits: opts.Limits.withDefaults(),
		out:    out,
		res:    &res,
	}
	defer func() {
		// A bug must not take the receiver down; the fuzz tests fail on
		// this message, so it is not a silent escape hatch.
		if p := recover(); p != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("internal error: %v", p))
		}
	}()
	x.walkMessage(msg)
	x.finish()
	return res
}

// extraction is the state of one Extract call.
type extraction struct {
	ctx    context.Context
	email  Email
	opts   Options
	limits Limits
	out    plog.LogRecordSlice
	res    *Result

	parts    int
	feedback []fieldBlock // message/feedback-report parts, read whole
	dsn      []dsnReport  // message/delivery-status parts
	returned []fieldBlock // message/rfc822, text/rfc822-headers: headers of the reported message
	// sealed counts the reports sealed per kind, reporter and id, so that
	// two reports of one email with the same identity (two delivery-status
	// parts of one bounce) still give every row its own uid.
	sealed map[string]int
}

// found records the kind of a report that yielded at least an attempt.
func (x *extraction) found(kind string) {
	if x.res.Type == "" {
		x.res.Type = kind
	}
}

func (x *extraction) errorf(format string, args ...any) {
	x.res.Errors = append(x.res.Errors, fmt.Sprintf(format, args...))
}

// limitHit reports a limit by name with the sentence that explains it.
func (x *extraction) limitHit(limit, format string, args ...any) {
	x.res.LimitHits = append(x.res.LimitHits, limit)
	x.errorf(format, args...)
}

// timeUp reports the time limit once and says whether time is up.
func (x *extraction) timeUp() bool {
	if x.ctx.Err() == nil {
		return false
	}
	for _, l := range x.res.LimitHits {
		if l == LimitTime {
			return true
		}
	}
	x.limitHit(LimitTime, "time limit reached, reports read in part")
	x.res.Partial = true
	return true
}
