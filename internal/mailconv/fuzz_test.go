package mailconv

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func FuzzConvert(f *testing.F) {
	for _, file := range fixtures(f) {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, seed := range []string{
		"",
		"\x00\x00\x00",
		"Content-Type: multipart/mixed; boundary=a\n\n--a\n--a\n--a--",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n",
		"Content-Type: message/rfc822\r\n\r\nSubject: =?x?q?=FF?=\r\n",
		"Subject: =?UTF-8?B?////?=\r\nContent-Transfer-Encoding: base64\r\n\r\n====",
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n=4=\n=",
		"Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n\x1b$B\xff\xfe",
		"Content-Disposition: attachment; filename*0*=x'y'%ZZ; filename*999999999=\r\n\r\n",
		"From: \"\\\r\nTo: <@>,,,<a@b\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	opts := Options{
		HTMLToText:                true,
		IncludeAttachmentContent:  true,
		MaxAttachmentContentBytes: 1024,
		MaxBodyBytes:              4096,
		MaxHeaderBytes:            4096,
		MaxDepth:                  8,
		MaxParts:                  50,
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		lr := plog.NewLogRecord()
		res, err := Convert(bytes.NewReader(raw), goldenEnv, opts, lr)
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if res.Size != int64(len(raw)) {
			t.Fatalf("Size = %d, want %d", res.Size, len(raw))
		}
		for _, pe := range res.ParseErrors {
			if strings.HasPrefix(pe, "internal error") {
				t.Fatalf("recovered panic: %s", pe)
			}
		}
		checkUTF8(t, "body", lr.Body())
		lr.Attributes().Range(func(k string, v pcommon.Value) bool {
			checkUTF8(t, k, v)
			return true
		})
	})
}

// checkUTF8 fails when any string (key or value) in v is not valid UTF-8.
func checkUTF8(t *testing.T, path string, v pcommon.Value) {
	t.Helper()
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
			checkUTF8(t, path+"[]", v.Slice().At(i))
		}
	}
}
