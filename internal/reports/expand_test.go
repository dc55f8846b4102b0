package reports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		head string
		want string
	}{
		{"\x1f\x8b\x08", formatGzip},
		{"PK\x03\x04", formatZip},
		{"PK\x05\x06", formatZip},
		{"<?xml", formatXML},
		{"\xef\xbb\xbf  \r\n<feedback>", formatXML},
		{"\n {\"a\":1}", formatJSON},
		{"%PDF", formatUnknown},
		{"", formatUnknown},
		{"PK", formatUnknown},
	} {
		if got := sniff([]byte(tc.head)); got != tc.want {
			t.Errorf("sniff(%q) = %q, want %q", tc.head, got, tc.want)
		}
	}
}

func expandAll(t *testing.T, payload []byte, limits Limits) (string, []byte, error) {
	t.Helper()
	e := &expander{ctx: context.Background(), limits: limits.withDefaults()}
	r, format, err := e.open(payload)
	if err != nil {
		return format, nil, err
	}
	data, err := io.ReadAll(r)
	return format, data, err
}

// The delivery forms all expand to the report itself.
func TestExpandForms(t *testing.T) {
	doc := reportgen.DefaultAggregate(reportgen.RFC7489).XML()
	for name, payload := range map[string][]byte{
		"plain":              doc,
		"gzip":               reportgen.Gzip(doc),
		"gzip trailing":      append(reportgen.Gzip(doc), "\r\ngarbage\x00"...),
		"gzip two members":   append(reportgen.Gzip(doc[:100]), reportgen.Gzip(doc[100:])...),
		"gzip in gzip":       reportgen.NestedGzip(doc, 2),
		"zip":                reportgen.Zip(reportgen.Entry{Name: "dir/r.xml", Data: doc}),
		"zip second entry":   reportgen.Zip(reportgen.Entry{Name: "README.txt", Data: []byte("x")}, reportgen.Entry{Name: "r.XML", Data: doc}),
		"gzip in zip":        reportgen.Zip(reportgen.Entry{Name: "r.xml.gz", Data: reportgen.Gzip(doc)}),
		"zip in gzip":        reportgen.Gzip(reportgen.Zip(reportgen.Entry{Name: "r.xml", Data: doc})),
		"gzip only first":    reportgen.Zip(reportgen.Entry{Name: "r.xml", Data: doc}, reportgen.Entry{Name: "s.xml", Data: []byte("<other/>")}),
		"empty gzip trailer": append(reportgen.Gzip(doc), 0x1f),
	} {
		format, got, err := expandAll(t, payload, Limits{})
		if err != nil || format != formatXML || !bytes.Equal(got, doc) {
			t.Errorf("%s: format %q, err %v, %d bytes (want %d)", name, format, err, len(got), len(doc))
		}
	}
}

// With the default limits a 1 GiB gzip stops at 64 MiB.
func TestExpandStopsAtDecompressedLimit(t *testing.T) {
	_, got, err := expandAll(t, reportgen.GzipBomb(1<<30), Limits{})
	le, ok := asLimit(err)
	if !ok || le.limit != LimitDecompressedBytes {
		t.Fatalf("err = %v, want the decompressed bytes limit", err)
	}
	if int64(len(got)) != DefaultLimits().MaxDecompressedBytes {
		t.Errorf("read %d bytes before the limit, want %d", len(got), DefaultLimits().MaxDecompressedBytes)
	}
	// Exactly at the limit is not over it.
	_, got, err = expandAll(t, reportgen.Gzip(bytes.Repeat([]byte("<"), 1000)), Limits{MaxDecompressedBytes: 1000})
	if err != nil || len(got) != 1000 {
		t.Errorf("payload of exactly the limit: %d bytes, %v", len(got), err)
	}
}

func TestExpandBroken(t *testing.T) {
	for name, payload := range map[string][]byte{
		"truncated gzip": reportgen.Gzip(bytes.Repeat([]byte("<a/>"), 1000))[:40],
		"bad zip":        []byte("PK\x03\x04 this is not a zip"),
	} {
		_, _, err := expandAll(t, payload, Limits{})
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, isLimit := asLimit(err); isLimit {
			t.Errorf("%s: a broken container is no limit: %v", name, err)
		}
	}
}

func TestSalvager(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\xffb", "a\uFFFDb"},
		{"ctl\x00\x01\tok\n", "ctl\uFFFD\uFFFD\tok\n"},
		{"cut \xe2\x82", "cut \uFFFD\uFFFD"},
		{"€ ok", "€ ok"},
	} {
		// One byte at a time: runes split across reads survive.
		got, err := io.ReadAll(&salvager{r: &oneByteReader{s: tc.in}})
		if err != nil || string(got) != tc.want {
			t.Errorf("salvage %q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

type oneByteReader struct{ s string }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if o.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.s[0]
	o.s = o.s[1:]
	return 1, nil
}

func TestUnknownXMLEncoding(t *testing.T) {
	_, err := utf8XML(strings.NewReader(`<?xml version="1.0" encoding="x-no-such"?><feedback/>`))
	if err == nil || !strings.Contains(err.Error(), "x-no-such") {
		t.Errorf("err = %v", err)
	}
}

func TestMXHosts(t *testing.T) {
	for in, want := range map[string]string{
		`"mx.example.org"`:                  "[mx.example.org]",
		`["a.example.org","b.example.org"]`: "[a.example.org b.example.org]",
		`""`:                                "[]",
		`17`:                                "[]",
	} {
		if got := strings.Join(mxHosts([]byte(in)), " "); "["+got+"]" != want {
			t.Errorf("mxHosts(%s) = [%s], want %s", in, got, want)
		}
	}
}

func TestFieldHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"rfc822; a@example.org":      "a@example.org",
		"dns;mx.example.org":         "mx.example.org",
		"smtp; 550 5.1.1 no":         "550 5.1.1 no",
		"a@example.org":              "a@example.org",
		"x <a;b@example.org>":        "x <a;b@example.org>",
		"utf-8; Ünïcode@example.org": "Ünïcode@example.org",
	} {
		if got := stripType(in); got != want {
			t.Errorf("stripType(%q) = %q, want %q", in, got, want)
		}
	}
	returned := readReturned(strings.NewReader("A: 1\r\nB: 2\r\na: 3\r\n\r\nbody"))
	if fmt.Sprint(returned) != "[{A 1} {B 2} {A 3}]" || returned.get("a") != "1" {
		t.Errorf("returned header %v: want wire order", returned)
	}
	blocks := readFieldBlocks([]byte("A: 1\r\n folded\r\nnot a field\r\n\r\n\r\nB: 2\nB: 3\n"))
	if len(blocks) != 2 || blocks[0].get("a") != "1 folded" || strings.Join(blocks[1].all("B"), ",") != "2,3" {
		t.Errorf("blocks = %+v", blocks)
	}
}

func TestAsLimit(t *testing.T) {
	if le, ok := asLimit(context.DeadlineExceeded); !ok || le.limit != LimitTime {
		t.Errorf("deadline: %v %v", le, ok)
	}
	if _, ok := asLimit(errors.New("x")); ok {
		t.Error("plain error taken for a limit")
	}
}
