package mailconv

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/pdatacheck"
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
		if bad := pdatacheck.InvalidUTF8(lr); bad != "" {
			t.Fatalf("invalid UTF-8 in %s", bad)
		}
	})
}
