package smtpreceiver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/smtpreceiver/smtpreceiver/internal/reports"
	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadatatest"
)

// dotStuffed doubles a leading dot on each line, as an SMTP client must.
func dotStuffed(msg []byte) string {
	s := string(msg)
	if strings.HasPrefix(s, ".") {
		s = "." + s
	}
	return strings.ReplaceAll(s, "\r\n.", "\r\n..")
}

func attrStr(lr plog.LogRecord, key string) string {
	v, ok := lr.Attributes().Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// Every generated report, sent over SMTP, arrives as one ConsumeLogs call:
// the email record (marked email.report.*) and one record per row, each
// carrying the email's client address, sender and Message-ID.
func TestReportsBecomeRecords(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO client.example.org", "250")
	for i, f := range reportgen.Fixtures() {
		reply := c.sendMail("reports@example.org", []string{"dmarc@example.org"}, dotStuffed(f.Message))
		require.Equal(t, "250 2.0.0 OK: queued", reply, f.Name)
		require.Len(t, sink.AllLogs(), i+1, "%s: one ConsumeLogs call per email", f.Name)

		var got []plog.LogRecord
		sl := sink.AllLogs()[i].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for j := 0; j < sl.Len(); j++ {
			got = append(got, sl.At(j))
		}
		email := got[0]
		want := plog.NewLogRecordSlice()
		wantRes := reports.Extract(context.Background(), f.Message, reports.Email{MessageID: attrStr(email, "email.message_id")}, reports.Options{}, want)
		require.Len(t, got, 1+want.Len(), f.Name)
		assert.Equal(t, wantRes.Type, attrStr(email, "email.report.type"), f.Name)
		assert.Equal(t, strconv.Itoa(want.Len()), attrStr(email, "email.report.rows"), f.Name)
		assert.Equal(t, strings.Join(wantRes.Errors, "; "), attrStr(email, "email.report.error"), f.Name)
		for j := 0; j < want.Len(); j++ {
			row := got[1+j]
			assert.Equal(t, want.At(j).EventName(), row.EventName(), f.Name)
			assert.Equal(t, "127.0.0.1", attrStr(row, "client.address"), f.Name)
			assert.Equal(t, "reports@example.org", attrStr(row, "smtp.mail_from"), f.Name)
			assert.Equal(t, attrStr(email, "email.message_id"), attrStr(row, "email.message_id"), f.Name)
			assert.Equal(t, attrStr(want.At(j), "log.record.uid"), attrStr(row, "log.record.uid"), f.Name)
			assert.Equal(t, want.At(j).Timestamp(), row.Timestamp(), f.Name)
			assert.Equal(t, email.ObservedTimestamp(), row.ObservedTimestamp(), f.Name)
		}
	}
}

// Bombs are answered 250 promptly (the email is fine), the email record
// says which limit stopped the report, and the limit is counted.
func TestReportBombsAreAccepted(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r, tel, _ := observedReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO client.example.org", "250")
	bombs := []struct {
		name, limit, err string
		msg              []byte
	}{
		{"gzip 1 GiB", reports.LimitDecompressedBytes, "larger than", reportgen.AggregateEmail("b1", "application/gzip", "r.xml.gz", reportgen.GzipBomb(1<<30))},
		{"zip 1 GiB", reports.LimitDecompressedBytes, "declares 1073741824 bytes", reportgen.AggregateEmail("b2", "application/zip", "r.zip", reportgen.ZipBomb(1<<30))},
		{"gzip in 5 layers", reports.LimitNesting, "nesting limit", reportgen.AggregateEmail("b3", "application/gzip", "r.xml.gz", reportgen.NestedGzip(reportgen.DefaultAggregate(reportgen.RFC7489).XML(), 5))},
	}
	for _, b := range bombs {
		require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("bomb@example.net", []string{"dmarc@example.org"}, dotStuffed(b.msg)), b.name)
	}
	laughs := reportgen.Message("x", "laughs@example.net", "", reportgen.Part{ContentType: "text/xml", Filename: "r.xml", Body: reportgen.BillionLaughs()})
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("bomb@example.net", []string{"dmarc@example.org"}, dotStuffed(laughs)))

	got := records(sink)
	require.Len(t, got, 4, "only the email records: no row came out of a bomb")
	for i, b := range bombs {
		assert.Contains(t, attrStr(got[i], "email.report.error"), b.err, b.name)
	}
	assert.Contains(t, attrStr(got[3], "email.report.error"), "invalid character entity &lol9;")
	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualSMTPReportLimitHits(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("limit", reports.LimitDecompressedBytes)), Value: 2},
		{Attributes: workerAttr(attribute.String("limit", reports.LimitNesting)), Value: 1},
	}, ignore...)
	metadatatest.AssertEqualSMTPReportsRead(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("kind", reports.KindDMARCAggregate)), Value: 2},
	}, ignore...)
}

// Rows are counted by kind.
func TestReportMetrics(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r, tel, _ := observedReceiver(t, testConfig(nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO client.example.org", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.org", []string{"b@example.org"}, dotStuffed(reportgen.DSN())))
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.org", []string{"b@example.org"}, dotStuffed(reportgen.Message("t", "t@example.org", "", reportgen.Attachment("application/tlsrpt+json", "r.json", reportgen.TLSRPT())))))
	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualSMTPReportRecords(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: workerAttr(attribute.String("kind", reports.KindDSN)), Value: 2},
		{Attributes: workerAttr(attribute.String("kind", reports.KindTLSRPT)), Value: 4},
	}, ignore...)
}

// keep_email_record: false leaves only the rows of a report read whole;
// mail without a report, and a report read in part, keep the email record.
func TestReportsWithoutEmailRecord(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.Reports.KeepEmailRecord = false }), sink)
	c := dial(t, r.addr())
	c.expect("EHLO client.example.org", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.org", []string{"b@example.org"}, dotStuffed(reportgen.DSN())))
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	var truncated reportgen.Fixture
	for _, f := range reportgen.Fixtures() {
		if f.Name == "broken-truncated-xml" {
			truncated = f
		}
	}
	require.NotNil(t, truncated.Message)
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.org", []string{"b@example.org"}, dotStuffed(truncated.Message)))
	var events []string
	for _, lr := range records(sink) {
		events = append(events, lr.EventName()+"|"+attrStr(lr, "email.report.type"))
	}
	assert.Equal(t, []string{
		"email.dsn.recipient|", "email.dsn.recipient|",
		"|",
		"|dmarc_aggregate", "dmarc.aggregate.record|",
	}, events)
}

// reports.enabled: false leaves report mail as one ordinary record.
func TestReportsDisabled(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(func(c *Config) { c.Reports.Enabled = false }), sink)
	c := dial(t, r.addr())
	c.expect("EHLO client.example.org", "250")
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.org", []string{"b@example.org"}, dotStuffed(reportgen.DSN())))
	got := records(sink)
	require.Len(t, got, 1)
	_, has := got[0].Attributes().Get("email.report.type")
	assert.False(t, has)
}

// A pipeline failure is answered 451 for the email and all its rows: they
// travel in one call, so no row is delivered without the others.
func TestReportsPipelineFailure(t *testing.T) {
	next := &flakyConsumer{failFirst: 1}
	r := startReceiver(t, testConfig(nil), next)
	c := dial(t, r.addr())
	c.expect("EHLO client.example.org", "250")
	msg := dotStuffed(reportgen.DSN())
	assert.True(t, strings.HasPrefix(c.sendMail("a@example.org", []string{"b@example.org"}, msg), "451 "))
	assert.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.org", []string{"b@example.org"}, msg))
	require.Len(t, next.LogsSink.AllLogs(), 1)
	assert.Equal(t, 3, next.LogsSink.AllLogs()[0].LogRecordCount())
}

func TestReportsConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*ReportsConfig)
		want string
	}{
		{func(c *ReportsConfig) { c.Kinds = nil }, "reports.kinds: is empty"},
		{func(c *ReportsConfig) { c.Kinds = []string{"dmarc"} }, `reports.kinds[0]: unknown kind "dmarc"; use one of dmarc_aggregate, tlsrpt, feedback, dsn`},
		{func(c *ReportsConfig) { c.MaxCompressedBytes = 0 }, "reports.max_compressed_bytes: must be greater than 0"},
		{func(c *ReportsConfig) { c.MaxDecompressedBytes = -1 }, "reports.max_decompressed_bytes: must be greater than 0"},
		{func(c *ReportsConfig) { c.MaxRows = 0 }, "reports.max_rows: must be greater than 0, got 0; set it in e.g. max_rows: 100000"},
	} {
		cfg := testConfig(nil)
		tc.mod(&cfg.Reports)
		err := cfg.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	cfg := testConfig(func(c *Config) { c.Reports = ReportsConfig{Enabled: false} })
	assert.NoError(t, cfg.Validate(), "a disabled reports block needs nothing else")
}

// The copy of a message is bounded by the window and, across messages in
// flight, by the shared budget; both are given back.
func TestReportSpoolBounds(t *testing.T) {
	rr := newReportReader(testConfig(nil))
	rr.window, rr.budget = 100, 150
	a, b := rr.spool(0), rr.spool(0)
	_, _ = a.Write(make([]byte, 90))
	_, _ = b.Write(make([]byte, 50))
	n, err := b.Write(make([]byte, 20))
	require.NoError(t, err)
	assert.Equal(t, 20, n, "a spool never fails the message")
	assert.True(t, b.busy)
	_, _ = a.Write(make([]byte, 20))
	assert.True(t, a.tooLong)
	a.release()
	b.release()
	assert.Equal(t, int64(0), rr.inUse.Load())
}

// A message announced (MAIL SIZE=) larger than the window is not copied at
// all; one announced within it is.
func TestReportSpoolSkipsAnnouncedLargeMessages(t *testing.T) {
	rr := newReportReader(testConfig(nil))
	report := reportgen.DSN()
	for declared, keep := range map[int64]bool{0: true, int64(len(report)): true, rr.window: true, rr.window + 1: false} {
		s := rr.spool(declared)
		_, _ = s.Write(report)
		assert.Equal(t, !keep, s.tooLong, "SIZE=%d", declared)
		assert.Equal(t, keep, len(s.buf) == len(report), "SIZE=%d", declared)
		s.release()
	}
	assert.Equal(t, int64(0), rr.inUse.Load())
}

// Through a session: MAIL SIZE= beyond the window means the report is not
// read (and the email record says so), within it the report is read.
func TestReportsReadUnlessAnnouncedTooLarge(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, testConfig(nil), sink)
	require.Less(t, r.reports.window, r.cfg.MaxMessageBytes, "the test needs SIZE= values between the window and the message limit")
	c := dial(t, r.addr())
	c.expect("EHLO client.example.org", "250")
	dsn := reportgen.DSN()
	for i, declared := range []int64{int64(len(dsn)), r.reports.window + 1} {
		c.expect(fmt.Sprintf("MAIL FROM:<reports@example.org> SIZE=%d", declared), "250 ")
		c.expect("RCPT TO:<dmarc@example.org>", "250 ")
		c.expect("DATA", "354 ")
		c.send(dotTerminated(dotStuffed(dsn)))
		require.Equal(t, "250 2.0.0 OK: queued", c.reply())
		email := sink.AllLogs()[i].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
		if i == 0 {
			assert.Equal(t, "dsn", attrStr(email, "email.report.type"))
			assert.Empty(t, attrStr(email, "email.report.error"))
		} else {
			assert.Contains(t, attrStr(email, "email.report.error"), "reports not read")
		}
	}
}

// The copy grows as append does, but never beyond the window.
func TestAppendWithin(t *testing.T) {
	var buf []byte
	for range 100 {
		buf = appendWithin(buf, make([]byte, 1000), 50_000)
		assert.LessOrEqual(t, cap(buf), max(50_000, len(buf)))
	}
	assert.Len(t, buf, 100_000, "appendWithin never drops bytes, even past the limit")
}

// Mail whose top-level type cannot carry a report is not kept beyond its
// header; report-shaped mail is.
func TestReportSpoolGivesUpOrdinaryMail(t *testing.T) {
	rr := newReportReader(testConfig(nil))
	for msg, keep := range map[string]bool{
		simpleMessage: false,
		"Content-Type: text/html\r\n\r\n<p>hi</p>\r\n":                                    false,
		"Content-Type: multipart/alternative; boundary=x\n\n--x--\n":                      false,
		"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n":                      true,
		"Content-Type: application/zip\r\n\r\nPK":                                         true,
		"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n": true,
	} {
		s := rr.spool(0)
		// Byte by byte: the header's end is found across writes.
		for i := 0; i < len(msg); i++ {
			_, _ = s.Write([]byte{msg[i]})
		}
		assert.Equal(t, !keep, s.noReport, msg)
		assert.Equal(t, keep, len(s.buf) == len(msg), msg)
		s.release()
	}
	assert.Equal(t, int64(0), rr.inUse.Load())
}

// With every expansion slot taken, a report waits at most its time budget
// and is then marked with the time limit.
func TestReportSlotsBoundConcurrency(t *testing.T) {
	r, _, _ := observedReceiver(t, testConfig(func(c *Config) { c.Workers = 1 }), new(consumertest.LogsSink))
	rr := r.reports
	require.Equal(t, 1, cap(rr.slots))
	rr.slots <- struct{}{}
	defer func() { <-rr.slots }()
	spool := rr.spool(0)
	_, _ = spool.Write(reportgen.DSN())
	recs := plog.NewLogRecordSlice()
	recs.AppendEmpty()
	rr.read(context.Background(), spool, recs, r.workers[0], 50*time.Millisecond)
	assert.Contains(t, attrStr(recs.At(0), "email.report.error"), "time limit")
	assert.Equal(t, 1, recs.Len())
}
