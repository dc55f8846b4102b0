package reports

import (
	"context"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

// fuzzLimits are small so that a run explores the limits, not big inputs.
var fuzzLimits = Limits{MaxCompressedBytes: 64 << 10, MaxDecompressedBytes: 256 << 10, MaxRows: 50, MaxParts: 20}

func newFuzzExtraction(out plog.LogRecordSlice, res *Result) *extraction {
	return &extraction{ctx: context.Background(), email: testEmail, limits: fuzzLimits.withDefaults(), out: out, res: res}
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
		checkUTF8(t, "body", lr.Body())
		lr.Attributes().Range(func(k string, v pcommon.Value) bool {
			checkUTF8(t, k, v)
			return true
		})
		if _, ok := lr.Attributes().Get("log.record.uid"); !ok || lr.EventName() == "" {
			t.Fatalf("record %d without uid or event name", i)
		}
	}
}

func checkUTF8(t *testing.T, path string, v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if !utf8.ValidString(v.Str()) {
			t.Fatalf("%s: invalid UTF-8 %q", path, v.Str())
		}
	case pcommon.ValueTypeMap:
		v.Map().Range(func(k string, mv pcommon.Value) bool {
			if !utf8.ValidString(k) {
				t.Fatalf("%s: invalid UTF-8 key %q", path, k)
			}
			checkUTF8(t, path+"."+k, mv)
			return true
		})
	case pcommon.ValueTypeSlice:
		for i := 0; i < v.Slice().Len(); i++ {
			checkUTF8(t, path, v.Slice().At(i))
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
		r, _, err := e.open(payload)
		if err != nil || r == nil {
			return // not a report (a zip without a report entry), or refused
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
	f.Fuzz(func(t *testing.T, doc []byte) {
		out := plog.NewLogRecordSlice()
		var res Result
		x := newFuzzExtraction(out, &res)
		x.decodeDMARC(strings.NewReader(string(doc)), "fuzz.xml")
		checkRecords(t, res, out)
	})
}

// FuzzTLSRPT: the TLS report decoder on any JSON.
func FuzzTLSRPT(f *testing.F) {
	f.Add(reportgen.TLSRPT())
	f.Add([]byte(`{"policies":[{"policy":{"mx-host":7},"failure-details":[{}]}],"report-id":1}`))
	f.Add([]byte(`{"organization-name":"a","policies":{}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		out := plog.NewLogRecordSlice()
		var res Result
		x := newFuzzExtraction(out, &res)
		x.decodeTLSRPT(strings.NewReader(string(doc)), "fuzz.json")
		checkRecords(t, res, out)
	})
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
