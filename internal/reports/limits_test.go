package reports

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

// manyRows is an aggregate report of n rows.
func manyRows(n int) []byte {
	a := reportgen.DefaultAggregate(reportgen.RFC7489)
	row := a.Rows[1]
	a.Rows = nil
	for i := 0; i < n; i++ {
		a.Rows = append(a.Rows, row)
	}
	return a.XML()
}

func gzipEmail(payload []byte) []byte {
	return reportgen.AggregateEmail("limits", "application/gzip", "report.xml.gz", payload)
}

// TestLimits: every limit is hit by input made for it, is named in
// LimitHits, described in Errors, and keeps the rows read before it.
func TestLimits(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	fiveEntries := reportgen.Zip(
		reportgen.Entry{Name: "report.xml", Data: manyRows(1)},
		reportgen.Entry{Name: "a.txt"}, reportgen.Entry{Name: "b.txt"},
		reportgen.Entry{Name: "c.txt"}, reportgen.Entry{Name: "d.txt"})
	tests := []struct {
		name      string
		ctx       context.Context
		msg       []byte
		limits    Limits
		wantLimit string
		wantErr   string
		wantRows  int
		wantType  string
	}{
		{name: "gzip bomb 1 GiB", msg: gzipEmail(reportgen.GzipBomb(1 << 30)),
			wantLimit: LimitDecompressedBytes, wantErr: "XML element is larger than", wantType: KindDMARCAggregate},
		{name: "zip bomb 1 GiB", msg: reportgen.AggregateEmail("zb", "application/zip", "report.zip", reportgen.ZipBomb(1<<30)),
			wantLimit: LimitDecompressedBytes, wantErr: "declares 1073741824 bytes"},
		{name: "zip bomb 8 MiB over a 4 MiB limit", msg: reportgen.AggregateEmail("zb", "application/zip", "report.zip", reportgen.ZipBomb(8<<20)),
			limits: Limits{MaxDecompressedBytes: 4 << 20}, wantLimit: LimitDecompressedBytes, wantErr: "declares"},
		{name: "gzip nested five times", msg: gzipEmail(reportgen.NestedGzip(manyRows(2), 5)),
			wantLimit: LimitNesting, wantErr: "nesting limit of 2"},
		{name: "compressed bytes", msg: gzipEmail(reportgen.Gzip(manyRows(50))), limits: Limits{MaxCompressedBytes: 100},
			wantLimit: LimitCompressedBytes, wantErr: "exceeds the limit of 100 bytes"},
		{name: "decompressed bytes keeps earlier rows", msg: gzipEmail(reportgen.Gzip(manyRows(3000))), limits: Limits{MaxDecompressedBytes: 1 << 20},
			wantLimit: LimitDecompressedBytes, wantErr: "decompressed payload exceeds the limit of 1048576 bytes", wantRows: -1, wantType: KindDMARCAggregate},
		{name: "zip entries", msg: reportgen.AggregateEmail("ze", "application/zip", "report.zip", fiveEntries),
			wantLimit: LimitZipEntries, wantErr: "zip has 5 entries, more than the limit of 4"},
		{name: "rows", msg: gzipEmail(reportgen.Gzip(manyRows(5))), limits: Limits{MaxRows: 3},
			wantLimit: LimitRows, wantErr: "more than 3 rows", wantRows: 3, wantType: KindDMARCAggregate},
		{name: "tlsrpt rows", msg: reportgen.Message("tls", "t@example.org", "", reportgen.Attachment("application/tlsrpt+json", "r.json", reportgen.TLSRPT())),
			limits: Limits{MaxRows: 2}, wantLimit: LimitRows, wantErr: "more than 2 rows", wantRows: 1, wantType: KindTLSRPT},
		{name: "time", ctx: cancelled, msg: gzipEmail(reportgen.Gzip(manyRows(2))), wantLimit: LimitTime, wantErr: "time limit"},
		{name: "parts", msg: reportgen.Message("p", "p@example.org", "", reportgen.Text("a"), reportgen.Text("b"), reportgen.Text("c")),
			limits: Limits{MaxParts: 2}, wantLimit: LimitParts, wantErr: "more than 2 MIME parts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			out := plog.NewLogRecordSlice()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res := Extract(ctx, tc.msg, testEmail, Options{Limits: tc.limits}, out)
			runtime.ReadMemStats(&after)
			if got := fmt.Sprint(res.LimitHits); got != "["+tc.wantLimit+"]" {
				t.Errorf("LimitHits = %v, want [%s]; errors %q", res.LimitHits, tc.wantLimit, res.Errors)
			}
			if !strings.Contains(strings.Join(res.Errors, "; "), tc.wantErr) {
				t.Errorf("Errors = %q, want %q in them", res.Errors, tc.wantErr)
			}
			switch {
			case tc.wantRows < 0 && (out.Len() == 0 || !res.Partial):
				t.Errorf("want some rows marked partial, got %d rows, partial %v", out.Len(), res.Partial)
			case tc.wantRows >= 0 && out.Len() != tc.wantRows:
				t.Errorf("rows = %d, want %d", out.Len(), tc.wantRows)
			}
			if res.Type != tc.wantType {
				t.Errorf("Type = %q, want %q", res.Type, tc.wantType)
			}
			// Memory stays far below what the payload would expand to.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 48<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

// An uncompressed payload has no decompression layer to watch the time:
// its reader stops at the deadline all the same.
func TestTimeLimitOnPlainPayloads(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, payload := range map[string][]byte{"xml": manyRows(2), "json": reportgen.TLSRPT()} {
		var res Result
		x := &extraction{ctx: cancelled, limits: DefaultLimits(), out: plog.NewLogRecordSlice(), res: &res}
		x.readPayload(bytes.NewReader(payload), "r."+name)
		if fmt.Sprint(res.LimitHits) != "[time]" || x.out.Len() != 0 {
			t.Errorf("%s: limits %v, errors %q, %d rows", name, res.LimitHits, res.Errors, x.out.Len())
		}
	}
}

// Go's encoding/xml expands no DTD entity: a billion laughs and an external
// entity are syntax errors, with nothing expanded and no file read.
func TestEntitiesAreNotExpanded(t *testing.T) {
	for name, doc := range map[string][]byte{"billion laughs": reportgen.BillionLaughs(), "external entity": reportgen.ExternalEntity()} {
		t.Run(name, func(t *testing.T) {
			for form, msg := range map[string][]byte{
				"text/xml": reportgen.Message("x", "x@example.org", "", reportgen.Part{ContentType: "text/xml", Filename: "r.xml", Body: doc}),
				"gzip":     gzipEmail(reportgen.Gzip(doc)),
			} {
				out := plog.NewLogRecordSlice()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				res := Extract(context.Background(), msg, testEmail, Options{}, out)
				runtime.ReadMemStats(&after)
				errs := strings.Join(res.Errors, "; ")
				if !strings.Contains(errs, "invalid character entity") {
					t.Errorf("%s: errors %q, want an invalid entity error", form, errs)
				}
				if out.Len() != 0 || strings.Contains(errs, "lollol") || strings.Contains(errs, "root:") {
					t.Errorf("%s: something was expanded: %d rows, errors %q", form, out.Len(), errs)
				}
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
					t.Errorf("%s: allocated %d MiB", form, alloc>>20)
				}
			}
		})
	}
}

// Mail that is no report stays without report attributes, even when it
// has attachments that look like report containers.
func TestNotAReport(t *testing.T) {
	photos := reportgen.Zip(reportgen.Entry{Name: "a.jpg", Data: []byte("x")}, reportgen.Entry{Name: "b.jpg"},
		reportgen.Entry{Name: "c.jpg"}, reportgen.Entry{Name: "d.jpg"}, reportgen.Entry{Name: "e.jpg"}, reportgen.Entry{Name: "f.jpg"})
	for name, msg := range map[string][]byte{
		"plain text":       []byte("From: a@example.org\r\nSubject: hi\r\n\r\n<b>not xml</b>\r\n"),
		"zip of photos":    reportgen.AggregateEmail("z", "application/zip", "photos.zip", photos),
		"other xml":        reportgen.Message("x", "x@example.org", "", reportgen.Part{ContentType: "text/xml", Filename: "x.xml", Body: []byte("<rss><channel/></rss>")}),
		"other json":       reportgen.Message("x", "x@example.org", "", reportgen.Attachment("application/json", "x.json", []byte(`{"a":[1,2]}`))),
		"pdf":              reportgen.AggregateEmail("p", "application/pdf", "x.pdf", []byte("%PDF-1.7")),
		"empty":            nil,
		"header only":      []byte("Subject: x"),
		"bounce no status": reportgen.Message("Undelivered", "u@example.org", "delivery-status", reportgen.Text("sorry"), reportgen.Text("again")),
	} {
		out := plog.NewLogRecordSlice()
		res := Extract(context.Background(), msg, testEmail, Options{}, out)
		if res.Found() || out.Len() != 0 {
			t.Errorf("%s: found %+v with %d rows", name, res, out.Len())
		}
	}
}

// Kinds not enabled are left alone.
func TestKinds(t *testing.T) {
	for _, f := range reportgen.Fixtures() {
		out := plog.NewLogRecordSlice()
		res := Extract(context.Background(), f.Message, testEmail, Options{Kinds: []string{}}, out)
		if res.Found() || out.Len() != 0 {
			t.Errorf("%s with no kinds: %+v", f.Name, res)
		}
	}
	out := plog.NewLogRecordSlice()
	res := Extract(context.Background(), reportgen.DSN(), testEmail, Options{Kinds: []string{KindDSN}}, out)
	if res.Type != KindDSN || out.Len() != 2 {
		t.Errorf("dsn only: %+v", res)
	}
}

// The uid depends on reporter, report id and row only: the same report
// mailed twice (a retry) yields the same uids, another report others.
func TestUIDDeterministic(t *testing.T) {
	uids := func(msg []byte) []string {
		out := plog.NewLogRecordSlice()
		Extract(context.Background(), msg, testEmail, Options{}, out)
		var list []string
		for i := 0; i < out.Len(); i++ {
			v, _ := out.At(i).Attributes().Get("log.record.uid")
			list = append(list, v.Str())
		}
		return list
	}
	a := reportgen.DefaultAggregate(reportgen.RFC7489)
	first := uids(gzipEmail(reportgen.Gzip(a.XML())))
	again := uids(reportgen.AggregateEmail("other-wrapper", "application/zip", "r.zip", reportgen.Zip(reportgen.Entry{Name: "r.xml", Data: a.XML()})))
	a.ReportID = "another"
	other := uids(gzipEmail(reportgen.Gzip(a.XML())))
	if len(first) != 2 || first[0] == first[1] {
		t.Fatalf("uids %v: want two distinct", first)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Errorf("same report, other wrapper: %v vs %v", first, again)
	}
	if first[0] == other[0] {
		t.Errorf("another report id gave the same uid")
	}
	if bytes.Contains([]byte(first[0]), []byte(" ")) {
		t.Errorf("uid %q", first[0])
	}
}
