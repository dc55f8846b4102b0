package smtpreceiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadatatest"
)

// observedReceiver starts a receiver whose logs and self-metrics the test
// can read.
func observedReceiver(t *testing.T, cfg *Config, next consumer.Logs) (*smtpReceiver, *componenttest.Telemetry, *observer.ObservedLogs) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.DebugLevel)
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, tel, logs
}

func workerAttr(extra ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append([]attribute.KeyValue{attribute.String("receiver", "smtp"), attribute.Int("worker", 0)}, extra...)...)
}

func TestSelfMetrics(t *testing.T) {
	next := &flakyConsumer{failFirst: 1}
	r, tel, _ := observedReceiver(t, testConfig(func(c *Config) { c.MaxRecipients = 1 }), next)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@example.com>", "250")
	c.expect("RCPT TO:<b@example.com>", "250")
	c.expect("RCPT TO:<c@example.com>", "452")
	c.expect("DATA", "354")
	c.send(dotTerminated(simpleMessage))
	assert.True(t, strings.HasPrefix(c.reply(), "451 "), "first message: pipeline failure")
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))

	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualSMTPMessagesAccepted(t, tel, []metricdata.DataPoint[int64]{{Attributes: workerAttr(), Value: 1}}, ignore...)
	metadatatest.AssertEqualSMTPMessagesRejected(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("reason", "pipeline_failed")), Value: 1},
	}, ignore...)
	metadatatest.AssertEqualSMTPRecipientsAccepted(t, tel, []metricdata.DataPoint[int64]{{Attributes: workerAttr(), Value: 2}}, ignore...)
	metadatatest.AssertEqualSMTPRecipientsRejected(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("reason", "limit")), Value: 1},
	}, ignore...)
	metadatatest.AssertEqualSMTPMessageBytesReceived(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(), Value: 2 * int64(len(simpleMessage))},
	}, ignore...)
	metadatatest.AssertEqualSMTPSessionsOpened(t, tel, []metricdata.DataPoint[int64]{{Attributes: workerAttr(), Value: 1}}, ignore...)
	metadatatest.AssertEqualSMTPSessionsActive(t, tel, []metricdata.DataPoint[int64]{{Attributes: workerAttr(), Value: 1}}, ignore...)

	// The collector's standard receiver metrics count the same records.
	m, err := tel.GetMetric("otelcol_receiver_accepted_log_records")
	require.NoError(t, err)
	assert.Equal(t, int64(1), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
	// Without the receiverhelper feature gate every pipeline error counts
	// as refused.
	m, err = tel.GetMetric("otelcol_receiver_refused_log_records")
	require.NoError(t, err)
	assert.Equal(t, int64(1), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
}

// flakyConsumer fails the first failFirst calls with a retryable error.
type flakyConsumer struct {
	consumertest.LogsSink
	failFirst int
	calls     int
}

func (f *flakyConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	f.calls++
	if f.calls <= f.failFirst {
		return errors.New("downstream unavailable")
	}
	return f.LogsSink.ConsumeLogs(ctx, ld)
}

func TestAuthAndTLSMetrics(t *testing.T) {
	cfg, clientTLS := secureConfig(t, nil)
	r, tel, logs := observedReceiver(t, cfg, new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	require.NoError(t, c.startTLS(clientTLS))
	c.expect("EHLO x", "250")
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", "hunter2-wrong"), "535")
	c.expect("AUTH PLAIN "+plainIR("", "mailuser", "secret"), "235")
	c.expect("QUIT", "221")
	require.True(t, c.closed())

	// A handshake that fails: the client offers TLS 1.1 only.
	bad := dial(t, r.addr())
	bad.expect("EHLO x", "250")
	old := clientTLS.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	require.Error(t, bad.startTLS(old))
	bad.conn.Close()

	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualSMTPAuthAttempts(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("mechanism", "PLAIN"), attribute.String("result", "failure")), Value: 1},
		{Attributes: workerAttr(attribute.String("mechanism", "PLAIN"), attribute.String("result", "success")), Value: 1},
	}, ignore...)
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol_smtp_tls_handshakes")
		return err == nil && len(m.Data.(metricdata.Sum[int64]).DataPoints) == 2
	}, 5*time.Second, 10*time.Millisecond)
	metadatatest.AssertEqualSMTPTLSHandshakes(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("result", "success")), Value: 1},
		{Attributes: workerAttr(attribute.String("result", "failure")), Value: 1},
	}, ignore...)

	for _, e := range logs.All() {
		line := e.Message + " " + stringify(e.ContextMap())
		assert.NotContains(t, line, "hunter2-wrong", "passwords never reach the logs")
		assert.NotContains(t, line, "secret")
	}
}

func stringify(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmt.Sprint(v), "\n", " ")))
		b.WriteString(" ")
	}
	return b.String()
}

func TestPlaintextAuthWarning(t *testing.T) {
	_, _, logs := observedReceiver(t, testConfig(func(c *Config) { c.Username, c.Password = "u", "p" }), new(consumertest.LogsSink))
	assert.Equal(t, 1, logs.FilterMessageSnippet("AUTH is enabled without TLS").Len())
}

func TestWorkersCapLogged(t *testing.T) {
	_, _, logs := observedReceiver(t, testConfig(func(c *Config) { c.Reuse = true; c.Workers = 1000 }), new(consumertest.LogsSink))
	capped := logs.FilterMessage("workers capped at the number of CPU cores").All()
	require.Len(t, capped, 1)
	assert.Equal(t, int64(1000), capped[0].ContextMap()["workers"])
}

// Every stats_frequency the receiver logs one line per worker with the
// interval's counts and records the interval rates.
func TestStatsReport(t *testing.T) {
	r, tel, logs := observedReceiver(t, testConfig(func(c *Config) { c.StatsFrequency = 1 }), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	for range 3 {
		assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	}
	// The messages may fall into one interval or two: add the lines up.
	var accepted, bytes int64
	var rate float64
	require.Eventually(t, func() bool {
		accepted, bytes, rate = 0, 0, 0
		for _, e := range logs.FilterMessage("SMTP stats").All() {
			f := e.ContextMap()
			assert.Equal(t, int64(0), f["worker"])
			accepted += f["messages_accepted"].(int64)
			bytes += f["bytes_received"].(int64)
			rate = max(rate, f["messages_per_second"].(float64))
		}
		return accepted == 3
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, int64(3*len(simpleMessage)), bytes)
	assert.Positive(t, rate)

	m, err := tel.GetMetric("otelcol_smtp_message_rate")
	require.NoError(t, err)
	assert.NotEmpty(t, m.Data.(metricdata.Gauge[float64]).DataPoints)
}

// A client that disconnects mid-DATA leaves no record; the message counts
// as rejected with reason read_error.
func TestDisconnectMidDataIsNotRecorded(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r, tel, _ := observedReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.openData()
	c.send(simpleMessage[:30])
	require.NoError(t, c.conn.Close())

	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol_smtp_messages_rejected")
		return err == nil && len(m.Data.(metricdata.Sum[int64]).DataPoints) == 1
	}, 5*time.Second, 10*time.Millisecond)
	metadatatest.AssertEqualSMTPMessagesRejected(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("reason", "read_error")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	assert.Empty(t, records(sink))
}

// A message refused by size before the session sees it (MAIL ... SIZE=
// over the limit, or a first BDAT chunk over it) is counted as
// smtp_messages_rejected{reason="size"}, like an over-size DATA body.
func TestSizeRefusalsAreCounted(t *testing.T) {
	r, tel, _ := observedReceiver(t, testConfig(func(c *Config) { c.MaxMessageBytes = 1000 }), new(consumertest.LogsSink))
	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@example.com> SIZE=1001", "552 5.3.4")
	c.expect("MAIL FROM:<a@example.com>", "250 ")
	c.expect("RCPT TO:<b@example.com>", "250 ")
	c.send("BDAT 1001 LAST\r\n" + strings.Repeat("x", 1001))
	assert.Equal(t, "552 5.3.4 Max message size exceeded", c.reply())
	c.expect("RSET", "250 ")
	c.openData()
	c.send(dotTerminated(strings.Repeat("y", 1100)))
	assert.Equal(t, "552 5.3.4 Maximum message size exceeded", c.reply())
	c.expect("QUIT", "221 ")
	require.Eventually(t, func() bool {
		return sumWith(tel, "otelcol_smtp_messages_rejected", attribute.String("reason", "size")) == 3
	}, 5*time.Second, 10*time.Millisecond, "one per refused message: SIZE=, BDAT, DATA")
}
