package reports

import (
	"context"
	"io"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/pdatacheck"

	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

// fuzzLimits are small so that a run explores the limits, not big inputs.
var fuzzLimits = Limits{MaxCompressedBytes: 64 << 10, MaxDecompressedBytes: 256 << 10, MaxRows: 50, MaxParts: 20}

// fuzzDecoder runs decode on each input with a fresh extraction and checks
// its records.
func fuzzDecoder(f *testing.F, decode func(x *extraction, doc []byte)) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		out := plog.NewLogRecordSlice()
		var res Result
		decode(&extraction{ctx: context.Background(), email: testEmail, limits: fuzzLimits.withDefaults(), out: out, res: &res}, doc)
		checkRecords(t, res, out)
	})
}

// checkRecords fails on what must never happen whatever the input: an
// internal error (a recovered panic), a row count that disagrees, more rows
// than the limit, or a string pdata cannot carry.
func checkRecords(t *testing.T, res Result, out plog.LogRecordSlice) {
	t.Helper()
	for _, e := range res.Errors {
		if strings.HasPrefix(e, "internal error") {
			t.Fatal(e)
		}
	}
	if res.Rows != out.Len() {
		t.Fatalf("Rows %d, records %d", res.Rows, out.Len())
	}
	for i := 0; i < out.Len(); i++ {
		lr := out.At(i)
		if bad := pdatacheck.InvalidUTF8(lr); bad != "" {
			t.Fatalf("invalid UTF-8 in %s", bad)
		}
		if _, ok := lr.Attributes().Get("log.record.uid"); !ok || lr.EventName() == "" {
			t.Fatalf("record %d without uid or event name", i)
		}
	}
}

// FuzzExpand: the sniff-and-expand step on any payload ends within the
// limits, with a limit, a container error or the payload.
func FuzzExpand(f *testing.F) {
	doc := reportgen.DefaultAggregate(reportgen.RFC9990).XML()
	for _, seed := range [][]byte{doc, reportgen.Gzip(doc), reportgen.NestedGzip(doc, 3),
		reportgen.Zip(reportgen.Entry{Name: "r.xml", Data: doc}), append(reportgen.Gzip(doc), "tail"...),
		reportgen.Gzip(reportgen.Zip(reportgen.Entry{Name: "r.xml.gz", Data: reportgen.Gzip(doc)})), []byte("PK\x03\x04"), {0x1f, 0x8b}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		e := &expander{ctx: context.Background(), limits: fuzzLimits.withDefaults()}
		r, format, err := e.open(payload)
		if err != nil || format == formatUnknown {
			return // a limit, a broken container, or no report (r is nil then)
		}
		n, _ := io.Copy(io.Discard, r)
		if n > fuzzLimits.MaxDecompressedBytes {
			t.Fatalf("read %d bytes past the limit", n)
		}
	})
}

// FuzzDMARC: the aggregate decoder on any XML.
func FuzzDMARC(f *testing.F) {
	for _, s := range []string{reportgen.RFC9990, reportgen.RFC7489, reportgen.Draft} {
		f.Add(reportgen.DefaultAggregate(s).XML())
	}
	f.Add(reportgen.BillionLaughs())
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><feedback><record><row><count>x</count></row></record>`))
	f.Add([]byte("<feedback><report_metadata><date_range><begin>-1</begin></date_range></report_metadata><record/><record>"))
	fuzzDecoder(f, func(x *extraction, doc []byte) { x.decodeDMARC(strings.NewReader(string(doc)), "fuzz.xml") })
}

// FuzzTLSRPT: the TLS report decoder on any JSON.
func FuzzTLSRPT(f *testing.F) {
	f.Add(reportgen.TLSRPT())
	f.Add([]byte(`{"policies":[{"policy":{"mx-host":7},"failure-details":[{}]}],"report-id":1}`))
	f.Add([]byte(`{"organization-name":"a","policies":{}}`))
	fuzzDecoder(f, func(x *extraction, doc []byte) { x.decodeTLSRPT(strings.NewReader(string(doc)), "fuzz.json") })
}

// FuzzFieldReports: the ARF and DSN decoders, through the whole email, on
// any message (MIME walk included).
func FuzzFieldReports(f *testing.F) {
	f.Add(reportgen.Feedback())
	f.Add(reportgen.DSN())
	for _, fx := range reportgen.Fixtures() {
		f.Add(fx.Message)
	}
	f.Add([]byte("Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: x\r\nStatus: 5\r\n"))
	f.Add([]byte("Content-Type: message/feedback-report\r\n\r\n: \r\n \r\nSource-IP: \xff\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		out := plog.NewLogRecordSlice()
		res := Extract(context.Background(), msg, testEmail, Options{Limits: fuzzLimits}, out)
		checkRecords(t, res, out)
	})
}
