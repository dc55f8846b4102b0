package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// workerStats are the running totals of one worker that the periodic stats
// report turns into interval values.
type workerStats struct {
	sessionsOpened   atomic.Int64
	sessionsActive   atomic.Int64
	messagesAccepted atomic.Int64
	messagesRejected atomic.Int64
	bytesReceived    atomic.Int64
	parseErrors      atomic.Int64
	authFailures     atomic.Int64
	failed           atomic.Bool
}

// workerAttrs are the metric attribute sets of one worker, built once so the
// hot path allocates nothing for them. Every one names the receiver by its
// component id: the collector adds nothing that tells two receivers apart
// in its Prometheus output (with telemetry.newPipelineTelemetry it adds
// scope attributes, which the exporter does not turn into labels, so two
// receivers' series would collide and /metrics fail).
//
// The worker's own set is also kept as ready option lists: an option passed
// on its own becomes a new variadic slice at every call (it escapes into
// the SDK's interface), one allocation per count on the message path.
type workerAttrs struct {
	receiver attribute.KeyValue
	index    attribute.KeyValue
	add      []metric.AddOption
	record   []metric.RecordOption
}

func newWorkerAttrs(id component.ID, index int) workerAttrs {
	a := workerAttrs{receiver: attribute.String("receiver", id.String()), index: attribute.Int("worker", index)}
	worker := metric.WithAttributeSet(attribute.NewSet(a.receiver, a.index))
	a.add = []metric.AddOption{worker}
	a.record = []metric.RecordOption{worker}
	return a
}

func (a workerAttrs) with(key, value string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(a.receiver, a.index, attribute.String(key, value)))
}

func (a workerAttrs) with2(k1, v1, k2, v2 string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(a.receiver, a.index, attribute.String(k1, v1), attribute.String(k2, v2)))
}

// The recording methods below count into both the worker's totals and the
// collector's self-metrics. The context of metric calls carries nothing the
// SDK needs, so a background context is used.

func (w *worker) sessionOpened() {
	w.stats.sessionsOpened.Add(1)
	w.stats.sessionsActive.Add(1)
	w.r.telemetry.SMTPSessionsOpened.Add(context.Background(), 1, w.attrs.add...)
	w.r.telemetry.SMTPSessionsActive.Add(context.Background(), 1, w.attrs.add...)
}

func (w *worker) sessionClosed() {
	w.stats.sessionsActive.Add(-1)
	w.r.telemetry.SMTPSessionsActive.Add(context.Background(), -1, w.attrs.add...)
}

func (w *worker) connectionRejected(reason string) {
	w.r.telemetry.SMTPConnectionsRejected.Add(context.Background(), 1, w.attrs.with("reason", reason))
}

func (w *worker) recipientAccepted() {
	w.r.telemetry.SMTPRecipientsAccepted.Add(context.Background(), 1, w.attrs.add...)
}

func (w *worker) recipientRejected(reason string) {
	w.r.telemetry.SMTPRecipientsRejected.Add(context.Background(), 1, w.attrs.with("reason", reason))
}

func (w *worker) bytesReceived(n int64) {
	w.stats.bytesReceived.Add(n)
	w.r.telemetry.SMTPMessageBytesReceived.Add(context.Background(), n, w.attrs.add...)
}

func (w *worker) messageAccepted() {
	w.stats.messagesAccepted.Add(1)
	w.r.telemetry.SMTPMessagesAccepted.Add(context.Background(), 1, w.attrs.add...)
}

func (w *worker) messageRejected(reason string) {
	w.stats.messagesRejected.Add(1)
	w.r.telemetry.SMTPMessagesRejected.Add(context.Background(), 1, w.attrs.with("reason", reason))
}

func (w *worker) parseError() {
	w.stats.parseErrors.Add(1)
	w.r.telemetry.SMTPMessagesParseErrors.Add(context.Background(), 1, w.attrs.add...)
}

func (w *worker) consumed(d time.Duration) {
	w.r.telemetry.SMTPConsumeDuration.Record(context.Background(), d.Seconds(), w.attrs.record...)
}

func (w *worker) authAttempt(mech string, ok bool) {
	if !ok {
		w.stats.authFailures.Add(1)
	}
	w.r.telemetry.SMTPAuthAttempts.Add(context.Background(), 1, w.attrs.with2("mechanism", mech, "result", result(ok)))
}

func (w *worker) tlsHandshake(ok bool) {
	w.r.telemetry.SMTPTLSHandshakes.Add(context.Background(), 1, w.attrs.with("result", result(ok)))
}

func result(ok bool) string {
	if ok {
		return "success"
	}
	return "failure"
}

// statsSnapshot is what one worker's totals were at one report.
type statsSnapshot struct {
	at                                  time.Time
	sessions, accepted, rejected, bytes int64
	parseErrors, authFailures, active   int64
}

func (w *worker) snapshot(now time.Time) statsSnapshot {
	return statsSnapshot{
		at:           now,
		sessions:     w.stats.sessionsOpened.Load(),
		accepted:     w.stats.messagesAccepted.Load(),
		rejected:     w.stats.messagesRejected.Load(),
		bytes:        w.stats.bytesReceived.Load(),
		parseErrors:  w.stats.parseErrors.Load(),
		authFailures: w.stats.authFailures.Load(),
		active:       w.stats.sessionsActive.Load(),
	}
}

// reportStats is the device's stats_frequency: at every interval it logs one
// summary line per worker and records the interval rates as gauges.
func (r *smtpReceiver) reportStats(every time.Duration) {
	last := make([]statsSnapshot, len(r.workers))
	now := time.Now()
	for i, w := range r.workers {
		last[i] = w.snapshot(now)
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-r.stopStat:
			return
		case now = <-ticker.C:
		}
		for i, w := range r.workers {
			cur := w.snapshot(now)
			r.logStats(w, last[i], cur)
			last[i] = cur
		}
	}
}

func (r *smtpReceiver) logStats(w *worker, prev, cur statsSnapshot) {
	secs := cur.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		return
	}
	msgRate := float64(cur.accepted-prev.accepted) / secs
	byteRate := float64(cur.bytes-prev.bytes) / secs
	r.telemetry.SMTPMessageRate.Record(context.Background(), msgRate, w.attrs.record...)
	r.telemetry.SMTPMessageByteRate.Record(context.Background(), byteRate, w.attrs.record...)
	r.set.Logger.Info("SMTP stats",
		zap.Int("worker", w.index),
		zap.Float64("interval_seconds", secs),
		zap.Int64("sessions_opened", cur.sessions-prev.sessions),
		zap.Int64("sessions_active", cur.active),
		zap.Int64("messages_accepted", cur.accepted-prev.accepted),
		zap.Int64("messages_rejected", cur.rejected-prev.rejected),
		zap.Int64("parse_errors", cur.parseErrors-prev.parseErrors),
		zap.Int64("auth_failures", cur.authFailures-prev.authFailures),
		zap.Int64("bytes_received", cur.bytes-prev.bytes),
		zap.Float64("messages_per_second", msgRate),
		zap.Float64("bytes_per_second", byteRate),
		zap.Int64("messages_accepted_total", cur.accepted),
	)
}
