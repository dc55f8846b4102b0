package senderauth

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

// TestHeaderTap: the kept header ends at the first CRLF CRLF or LF LF,
// wherever the writes split it, and is cut at the limit when it has no end.
func TestHeaderTap(t *testing.T) {
	tests := []struct {
		name, in     string
		limit        int
		want         string
		wantComplete bool
		wantOverflow bool
	}{
		{"CRLF", "A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", 100, "A: 1\r\nB: 2\r\n\r\n", true, false},
		{"LF", "A: 1\nB: 2\n\nbody\n\n", 100, "A: 1\nB: 2\n\n", true, false},
		{"LF LF before a later CRLF CRLF", "A: 1\n\nB: 2\r\n\r\n", 100, "A: 1\n\n", true, false},
		{"LF CRLF is no end", "A: 1\n\r\nB: 2\r\n\r\nx", 100, "A: 1\n\r\nB: 2\r\n\r\n", true, false},
		{"empty header", "\r\n\r\nbody", 100, "\r\n\r\n", true, false},
		{"no end yet", "A: 1\r\nB: 2\r\n", 100, "A: 1\r\nB: 2\r\n", false, false},
		{"no end, cut at the limit", "A: 1\r\nB: 2\r\nC: 3\r\n", 10, "A: 1\r\nB: 2", false, true},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 3, 5, len(tt.in)} {
			tap := headerTap{limit: tt.limit}
			for b := []byte(tt.in); len(b) > 0; {
				n := min(len(b), chunk)
				tap.Write(b[:n])
				b = b[n:]
			}
			if string(tap.buf) != tt.want || tap.complete != tt.wantComplete || tap.overflow != tt.wantOverflow {
				t.Errorf("%s, chunks of %d: kept %q complete %v overflow %v; want %q %v %v",
					tt.name, chunk, tap.buf, tap.complete, tap.overflow, tt.want, tt.wantComplete, tt.wantOverflow)
			}
		}
	}
}

// fieldsWithTextproto reads the three fields with go-message's parser,
// which is what the checks used before scanFields: the reference.
func fieldsWithTextproto(b []byte) headerFields {
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	return headerFields{
		from:                  hdr.Values("From"),
		dkimSignature:         hdr.Values("DKIM-Signature"),
		authenticationResults: hdr.Values("Authentication-Results"),
	}
}

var headerSamples = []string{
	"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nbody",
	"from:alice@example.org\n\n",
	"FROM :  Alice\r\n  <alice@example.org>  \r\n\t\r\nTo: b\r\n\r\n",
	"DKIM-Signature: v=1; a=rsa-sha256;\r\n d=example.org; s=s1;\r\n\tb=abc\r\ndkim-signature: v=1; d=example.net\r\nFrom: a@example.org\r\n\r\n",
	"Authentication-Results: relay.example.com;\r\n spf=pass smtp.mailfrom=example.org\r\nFrom: a@example.org\r\n\r\n",
	": no name\r\n continued\r\nFrom: a@example.org\r\n\r\n",
	"From: a@example.org\r\nnot a field line\r\nFrom: b@example.org\r\n\r\n",
	"From: a@example.org\r\nBad Name: x\r\nDKIM-Signature: d=x\r\n\r\n",
	" From: leading space\r\n\r\n",
	"From: bare\rCR@example.org\r\n\r\n",
	"From: a@example.org\r\nSubject: " + strings.Repeat("x", 5000) + "\r\nDKIM-Signature: d=" + strings.Repeat("y", 4094) + "\r\n\r\n",
	"From: a@example.org\r\n\r\nFrom: body@example.org\r\n",
	"From: a@example.org\r\nX: y",
	"From: a@example.org\r\nFrom: b@example.org\r\n\r\n",
	"From:\r\n\r\n",
	"\r\n\r\n",
	"",
	"From: caf\xc3\xa9 <\xff@example.org>\r\n\r\n",
	"Fr\xc3\xb6m: x\r\nFrom: y\r\n\r\n",
}

// TestScanFieldsMatchesTextproto: on every sample, readFields (the scan,
// or the parser when the scan gives up) gives what textproto.ReadHeader
// gave, and the scan takes the plain headers itself.
func TestScanFieldsMatchesTextproto(t *testing.T) {
	for i, s := range headerSamples {
		want := fieldsWithTextproto([]byte(s))
		if got := readFields([]byte(s)); !reflect.DeepEqual(got, want) {
			t.Errorf("sample %d %q:\n got %q\nwant %q", i, s, got, want)
		}
	}
	for _, i := range []int{0, 1, 2, 3, 4, 5, 10, 11, 13} {
		if _, ok := scanFields([]byte(headerSamples[i])); !ok {
			t.Errorf("sample %d is plain but the scan gave up", i)
		}
	}
}

// FuzzScanFields: whenever scanFields reads a header, it reads what
// textproto.ReadHeader reads; and the tap's fields equal the parser's on
// the bytes it keeps.
func FuzzScanFields(f *testing.F) {
	for _, s := range headerSamples {
		f.Add([]byte(s), uint16(64))
	}
	f.Fuzz(func(t *testing.T, b []byte, limit uint16) {
		if got, ok := scanFields(b); ok {
			if want := fieldsWithTextproto(b); !reflect.DeepEqual(got, want) {
				t.Fatalf("scan %q\nparser %q", got, want)
			}
		}
		tap := headerTap{limit: int(limit) + 1}
		tap.Write(b)
		kept := tap.kept()
		if got, want := tap.fields(), fieldsWithTextproto(kept); !reflect.DeepEqual(got, want) {
			t.Fatalf("tap %q\nparser %q", got, want)
		}
	})
}
