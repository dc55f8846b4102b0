package mailconv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

func convertString(t *testing.T, raw string, opts Options) (plog.LogRecord, Result) {
	t.Helper()
	lr := plog.NewLogRecord()
	res, err := Convert(strings.NewReader(raw), goldenEnv, opts, lr)
	require.NoError(t, err)
	require.Equal(t, int64(len(raw)), res.Size)
	return lr, res
}

func bodyStr(lr plog.LogRecord, key string) string {
	v, ok := lr.Body().Map().Get(key)
	if !ok {
		return "<absent>"
	}
	return v.AsString()
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in      string
		want    []addr
		wantErr bool
	}{
		{in: "a@example.org", want: []addr{{address: "a@example.org"}}},
		{in: `"Doe, John" <j@example.org>, b@example.org`, want: []addr{{"Doe, John", "j@example.org"}, {"", "b@example.org"}}},
		{in: "=?UTF-8?Q?J=C3=B6rg?= <j@example.org>", want: []addr{{"Jörg", "j@example.org"}}},
		{in: "root@host (Cron Daemon)", want: []addr{{"Cron Daemon", "root@host"}}},
		{in: "undisclosed-recipients:;", want: []addr{}},
		{in: "a@example.org; b@example.org", want: []addr{{"", "a@example.org"}, {"", "b@example.org"}}, wantErr: true},
		{in: `"broken <x@example.org>`, want: []addr{{"", "x@example.org"}}, wantErr: true},
		{in: "Ren\xe9 <r@example.fr>", want: []addr{{"René", "r@example.fr"}}, wantErr: true},
		{in: "", want: nil},
		{in: "just garbage", want: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var errs errorList
			got := parseAddressList("To", tt.in, &errs)
			if len(tt.want) == 0 {
				assert.Empty(t, got)
			} else {
				assert.Equal(t, tt.want, got)
			}
			assert.Equal(t, tt.wantErr, len(errs.list()) > 0, errs.list())
		})
	}
}

func TestClientAddr(t *testing.T) {
	tests := []struct {
		in             netip.AddrPort
		hostPort, host string
		port           int64
	}{
		{netip.MustParseAddrPort("192.0.2.1:25"), "192.0.2.1:25", "192.0.2.1", 25},
		{netip.MustParseAddrPort("[::1]:1234"), "[::1]:1234", "::1", 1234},
		{netip.MustParseAddrPort("[2001:db8::1]:587"), "[2001:db8::1]:587", "2001:db8::1", 587},
		{netip.MustParseAddrPort("[::ffff:192.0.2.1]:25"), "192.0.2.1:25", "192.0.2.1", 25}, // dual-stack listener
		{netip.MustParseAddrPort("[fe80::1%eth0]:25"), "[fe80::1%eth0]:25", "fe80::1%eth0", 25},
	}
	for _, tt := range tests {
		got := clientAddrOf(tt.in)
		assert.Equal(t, clientAddr{ok: true, hostPort: tt.hostPort, host: tt.host, port: tt.port}, got, tt.in)
	}
	assert.Equal(t, clientAddr{}, clientAddrOf(netip.AddrPort{}), "unknown client")
}

func TestCharsetFallbacks(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		body    string
		want    string
		wantErr string
	}{
		{"utf8 declared", "text/plain; charset=utf-8", "grüß", "grüß", ""},
		{"no charset valid utf8", "text/plain", "grüß", "grüß", ""},
		{"no charset latin1", "text/plain", "gr\xfc\xdf", "grüß", "decoded as ISO-8859-1"},
		{"us-ascii with latin1", "text/plain; charset=us-ascii", "caf\xe9", "café", "decoded as ISO-8859-1"},
		{"utf8 declared invalid", "text/plain; charset=utf-8", "a\xffb", "a\uFFFDb", "invalid UTF-8 replaced"},
		{"unknown charset utf8 bytes", "text/plain; charset=x-foo", "grüß", "grüß", "unknown charset"},
		{"unknown charset latin1 bytes", "text/plain; charset=x-foo", "gr\xfc\xdf", "grüß", "unknown charset"},
		{"koi8-r", "text/plain; charset=koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", ""},
		{"quoted charset uppercase", `text/plain; charset="WINDOWS-1252"`, "\x80", "€", ""},
		{"html meta charset", "text/html", `<meta charset="iso-8859-7"><p>` + "\xe1", `<meta charset="iso-8859-7"><p>α`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "Subject: x\r\nContent-Type: " + tt.ct + "\r\n\r\n" + tt.body
			lr, res := convertString(t, raw, Options{})
			assert.Equal(t, tt.want, bodyStr(lr, "body"))
			if tt.wantErr == "" {
				assert.Empty(t, res.ParseErrors)
			} else {
				assert.Contains(t, strings.Join(res.ParseErrors, "; "), tt.wantErr)
			}
		})
	}
}

func TestCapUTF8(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
		cut  bool
	}{
		{"hello", 10, "hello", false},
		{"hello", 5, "hello", false},
		{"hello", 3, "hel", true},
		{"héllo", 2, "h", true}, // é is two bytes: never split it
		{"héllo", 3, "hé", true},
		{"日本", 4, "日", true},
		{"abc", 0, "", true},
		{"", 0, "", false},
	}
	for _, tt := range tests {
		got, cut := capUTF8(tt.in, tt.n)
		assert.Equal(t, tt.want, got, "%q/%d", tt.in, tt.n)
		assert.Equal(t, tt.cut, cut, "%q/%d", tt.in, tt.n)
	}
}

func TestTruncation(t *testing.T) {
	opts := Options{MaxBodyBytes: 10}
	raw := "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		strings.Repeat("x", 1000) + "\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>short</p>\r\n--b--\r\nepilogue"
	lr, res := convertString(t, raw, opts)
	assert.Equal(t, strings.Repeat("x", 10), bodyStr(lr, "body"))
	assert.Equal(t, "<p>short</", bodyStr(lr, "html"))
	v, ok := lr.Attributes().Get("email.body.truncated")
	require.True(t, ok)
	assert.True(t, v.Bool())
	assert.Empty(t, res.ParseErrors, "truncation is a limit, not a parse error")
}

func TestLimits(t *testing.T) {
	many := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		strings.Repeat("--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n", 20) + "--b--\r\n"
	deep := "Content-Type: text/plain\r\n\r\ndeep"
	for i := 0; i < 30; i++ {
		deep = fmt.Sprintf("Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n", i, i, deep, i)
	}
	bigHeader := "Subject: a\r\nX-Big: " + strings.Repeat("y", 5000) + "\r\nX-After: z\r\n\r\nbody"

	tests := []struct {
		name    string
		raw     string
		opts    Options
		wantErr string
		check   func(t *testing.T, lr plog.LogRecord, res Result)
	}{
		{"parts", many, Options{MaxParts: 7}, "more than 7 MIME parts", func(t *testing.T, lr plog.LogRecord, _ Result) {
			count, _ := lr.Attributes().Get("email.attachments.count")
			assert.Equal(t, int64(7), count.Int())
		}},
		{"depth", deep, Options{MaxDepth: 10}, "MIME nesting deeper than 10", nil},
		{"depth default is 20", deep, Options{}, "MIME nesting deeper than 20", nil},
		{"depth 40 handles 30 levels", deep, Options{MaxDepth: 40}, "", func(t *testing.T, lr plog.LogRecord, _ Result) {
			assert.Equal(t, "deep", bodyStr(lr, "body"))
		}},
		{"header", bigHeader, Options{MaxHeaderBytes: 1000}, "header exceeds 1000 bytes", func(t *testing.T, lr plog.LogRecord, _ Result) {
			assert.Equal(t, "a", bodyStr(lr, "subject"))
			assert.Equal(t, "body", bodyStr(lr, "body"))
			headers, _ := lr.Body().Map().Get("headers")
			_, has := headers.Map().Get("X-After")
			assert.False(t, has)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr, res := convertString(t, tt.raw, tt.opts)
			joined := strings.Join(res.ParseErrors, "; ")
			if tt.wantErr == "" {
				assert.Empty(t, joined)
			} else {
				assert.Contains(t, joined, tt.wantErr)
				v, _ := lr.Attributes().Get("email.parse_error")
				assert.Equal(t, joined, v.Str())
			}
			if tt.check != nil {
				tt.check(t, lr, res)
			}
		})
	}
}

func TestSizeCounting(t *testing.T) {
	inputs := map[string]string{
		"empty":             "",
		"header only":       "Subject: x",
		"no body":           "Subject: x\r\n\r\n",
		"epilogue":          "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n" + strings.Repeat("epilogue ", 1000),
		"truncated body":    "\r\n" + strings.Repeat("z", 100000),
		"ignored parts":     "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", 50),
		"oversized header":  strings.Repeat("X: "+strings.Repeat("h", 100)+"\r\n", 100) + "\r\nbody",
		"single huge line":  strings.Repeat("a", 200000),
		"no final boundary": "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + strings.Repeat("q", 10000),
	}
	opts := Options{MaxBodyBytes: 100, MaxHeaderBytes: 1000, MaxParts: 3}
	for name, raw := range inputs {
		t.Run(name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(raw), iotest.OneByteReader(strings.NewReader(raw)), iotest.HalfReader(strings.NewReader(raw))} {
				res, err := Convert(r, goldenEnv, opts, plog.NewLogRecord())
				require.NoError(t, err)
				assert.Equal(t, int64(len(raw)), res.Size)
			}
		})
	}
}

var errSizeLimit = errors.New("message too big")

// failingReader delivers data, then fails with err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReaderError(t *testing.T) {
	attachment := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Repeat("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n", 2000)
	tests := map[string]string{
		"in header":        "Subject: hello\r\nFrom: a@",
		"in text body":     "Subject: hello\r\n\r\n" + strings.Repeat("body ", 100),
		"mid attachment":   attachment,
		"mid qp text":      "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + strings.Repeat("=C3=A4", 5000),
		"before any bytes": "",
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			lr := plog.NewLogRecord()
			res, err := Convert(&failingReader{data: []byte(data), err: errSizeLimit}, goldenEnv, Options{}, lr)
			require.Error(t, err)
			assert.ErrorIs(t, err, errSizeLimit)
			assert.Equal(t, int64(len(data)), res.Size)
			for _, pe := range res.ParseErrors {
				assert.NotContains(t, pe, "message too big", "a transport error is not a parse error")
			}
		})
	}
}

func TestTransferDecoders(t *testing.T) {
	tests := []struct {
		cte, in, want string
		bad           bool
	}{
		{"base64", "aGVsbG8=", "hello", false},
		{"base64", "aGVs\r\nbG8=\r\n", "hello", false},
		{"base64", "aGVsbG8", "hello", false},
		{"base64", "aG!VsbG8=", "hello", true},
		{"base64", "aGk=aGk=", "hihi", false},
		{"base64", "aGVsbG8gd", "hello ", true},
		{"quoted-printable", "caf=C3=A9", "café", false},
		{"quoted-printable", "soft=\r\nbreak", "softbreak", false},
		{"quoted-printable", "soft= \nbreak", "softbreak", false},
		{"quoted-printable", "a=zzb", "a=zzb", true},
		{"quoted-printable", "end=", "end", false},
		{"QUOTED-PRINTABLE", "x=3Dy", "x=y", false},
		{"7bit", "as is", "as is", false},
		{"x-unknown", "raw", "raw", true},
	}
	for _, tt := range tests {
		t.Run(tt.cte+" "+tt.in, func(t *testing.T) {
			bad := false
			r := transferDecoder(tt.cte, iotest.HalfReader(strings.NewReader(tt.in)), func(string) { bad = true })
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, tt.bad, bad)
		})
	}
}

func TestRFC2231Param(t *testing.T) {
	tests := []struct{ header, want string }{
		{`attachment; filename*=iso-8859-1'de'Gr%FC%DFe.pdf`, "Grüße.pdf"},
		{`attachment; filename*0*=utf-8''a%20b; filename*1=c.txt`, "a bc.txt"},
		{`attachment; filename*1*=%E2%80%93.txt; filename*0*=UTF-8''x`, "x–.txt"},
		{`attachment; filename*=koi8-r''%F0`, "П"},
		{`attachment; filename="plain.txt"`, ""},
		{`attachment`, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, rfc2231Param(tt.header, "filename"), tt.header)
	}
}

func TestHTMLToText(t *testing.T) {
	in := `<html><head><style>x{}</style></head><body><p>A &amp; B</p><ul><li>one</li><li>two</li></ul>` +
		`<a href="https://x.example/">link</a><br>end<script>alert(1)</script></body></html>`
	assert.Equal(t, "A & B\n- one\n- two\nlink (https://x.example/)\nend", htmlToText(in))
}

func TestJSONBodyHasSameKeys(t *testing.T) {
	raw := "From: a@example.org\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n<p>x & y</p>"
	mapRec, _ := convertString(t, raw, Options{})
	jsonRec, _ := convertString(t, raw, Options{BodyFormat: BodyFormatJSON})
	var decoded map[string]any
	require.NoError(t, json.Unmarshal([]byte(jsonRec.Body().Str()), &decoded))
	want, err := json.Marshal(mapRec.Body().Map().AsRaw())
	require.NoError(t, err)
	got, err := json.Marshal(decoded)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
	assert.Contains(t, jsonRec.Body().Str(), "<p>x & y</p>", "no HTML escaping in the JSON body")
}

func TestEnvelopeAttributes(t *testing.T) {
	env := Envelope{From: "", To: []string{"a@x"}, Client: netip.MustParseAddrPort("[::1]:2525"), Helo: "h", AuthUser: "bob"}
	lr := plog.NewLogRecord()
	_, err := Convert(strings.NewReader("Subject: s\r\n\r\nb"), env, Options{}, lr)
	require.NoError(t, err)
	attrs := lr.Attributes().AsRaw()
	assert.Equal(t, "::1", attrs["client.address"])
	assert.Equal(t, int64(2525), attrs["client.port"])
	assert.Equal(t, "bob", attrs["user.name"])
	assert.Equal(t, "", attrs["smtp.mail_from"])
	assert.NotContains(t, attrs, "tls.protocol.version")
	client, _ := lr.Body().Map().Get("client")
	assert.Equal(t, map[string]any{"address": "::1", "port": int64(2525), "helo": "h", "auth_user": "bob"}, client.Map().AsRaw())
	assert.Equal(t, lr.ObservedTimestamp(), lr.Timestamp(), "no Date header: Timestamp is ReceivedAt")
}

// Convert turns a panic into an "internal error" parse error (mime.go), so
// not panicking is not enough: that mark must not appear either.
func TestNeverPanicsOnNilishInput(t *testing.T) {
	for _, raw := range []string{"", "\r\n", "\n\n", ":", "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n", "Content-Type: message/rfc822\r\n\r\n"} {
		res, err := Convert(bytes.NewReader([]byte(raw)), Envelope{}, Options{}, plog.NewLogRecord())
		require.NoError(t, err)
		for _, pe := range res.ParseErrors {
			assert.NotContains(t, pe, "internal error", "%q", raw)
		}
	}
}

func TestMailClientAttribute(t *testing.T) {
	tests := []struct{ name, headers, want string }{
		{"X-Mailer", "X-Mailer: Microsoft Outlook 16.0\r\nUser-Agent: ignored\r\n", "Microsoft Outlook 16.0"},
		{"User-Agent only", "User-Agent: Mozilla Thunderbird\r\n", "Mozilla Thunderbird"},
		{"neither", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr, _ := convertString(t, tt.headers+"Subject: x\r\n\r\nhi\r\n", Options{})
			v, ok := lr.Attributes().Get("email.x_mailer")
			if tt.want == "" {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.want, v.Str())
		})
	}
}

// A line that is not a header field ends the header block, as in Python's
// email package: it and the rest are the body, so header-less alert mail
// keeps its text.
func TestNonHeaderLineEndsHeader(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // a "name" longer than the read buffer
	tests := []struct {
		name, raw, wantBody string
		wantHeaders         map[string]any
		wantErr             string // "" means no parse error
	}{
		{"one line without header", "UPS on battery, 10 minutes left\r\n",
			"UPS on battery, 10 minutes left\n", map[string]any{}, "first line is not a header field"},
		{"field then text", "Alert: disk full\r\nhost1 /var is 100% used",
			"host1 /var is 100% used", map[string]any{"Alert": []any{"disk full"}}, "line is not a header field"},
		{"text inside the header", "Subject: s\r\nnot a header\r\nX: y\r\n\r\nbody",
			"not a header\nX: y\n\nbody", map[string]any{"Subject": []any{"s"}}, `"not a header"`},
		{"bare LF", "Alert: disk full\nhost1 down\n",
			"host1 down\n", map[string]any{"Alert": []any{"disk full"}}, "line is not a header field"},
		{"8-bit name", "Gr\xc3\xbc\xc3\x9fe: x\r\n\r\nb",
			"Grüße: x\n\nb", map[string]any{}, "first line is not a header field"},
		{"NUL in the name", "Sub\x00ject: x\r\n\r\nb",
			"Subject: x\n\nb", map[string]any{}, "first line is not a header field"},
		{"name without colon up to EOF", "Subject", "Subject", map[string]any{}, "first line is not a header field"},
		{"name longer than the read buffer", long + "\r\n", long + "\n", map[string]any{}, "first line is not a header field"},
		{"space before the colon is obsolete syntax, still a field", "Subject : s\r\n\r\nb",
			"b", map[string]any{"Subject": []any{"s"}}, ""},
		{"mbox From line is skipped", "From sender@example.org Fri May 17 12:00:00 2024\r\nSubject: s\r\n\r\nb",
			"b", map[string]any{"Subject": []any{"s"}}, `mbox "From " line ignored`},
		{"empty name is skipped", ": x\r\nSubject: s\r\n\r\nb",
			"b", map[string]any{"Subject": []any{"s"}}, "without a field name"},
		{"blank line first: all body", "\r\nSubject: s\r\n", "Subject: s\n", map[string]any{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []func(string) io.Reader{
				func(s string) io.Reader { return strings.NewReader(s) },
				func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
			} {
				lr := plog.NewLogRecord()
				res, err := Convert(r(tt.raw), goldenEnv, Options{}, lr)
				require.NoError(t, err)
				assert.Equal(t, int64(len(tt.raw)), res.Size)
				assert.Equal(t, tt.wantBody, bodyStr(lr, "body"))
				headers, _ := lr.Body().Map().Get("headers")
				assert.Equal(t, tt.wantHeaders, headers.Map().AsRaw())
				if tt.wantErr == "" {
					assert.Empty(t, res.ParseErrors)
				} else {
					assert.Contains(t, strings.Join(res.ParseErrors, "; "), tt.wantErr)
				}
			}
		})
	}
}

// The body text becomes the record's string without a copy, unless the
// buffer is mostly spare capacity, which the record would otherwise pin.
func TestFinalStringDoesNotPinSpareCapacity(t *testing.T) {
	tests := []struct {
		name      string
		len, cap  int
		wantShare bool
	}{
		{"small mail in its first buffer", 150, 1 << 10, true},
		{"nearly full buffer", 1000 << 10, 1 << 20, true},
		{"buffer mostly empty", 300 << 10, 1 << 20, false},
	}
	for _, tt := range tests {
		b := make([]byte, tt.len, tt.cap)
		s := finalString(b)
		assert.Equal(t, tt.len, len(s), tt.name)
		assert.Equal(t, tt.wantShare, unsafe.StringData(s) == unsafe.SliceData(b), tt.name)
	}
}
