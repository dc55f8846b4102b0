//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The password of the secure scenarios: distinctive, so the test can check it
// never shows up in the collector's output.
const (
	authUser     = "mailuser"
	authPassword = "Secr3t-e2e-pw"
)

// ---------------------------------------------------------------- assertions

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func eqList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// hostOf splits "ip:port" and checks the port is a number.
func hostOf(t *testing.T, what, hostport string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s: %q is not ip:port: %v", what, hostport, err)
		return ""
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		t.Errorf("%s: bad port in %q", what, hostport)
	}
	return host
}

// checkDevice asserts the resource attributes a device config produces.
func checkDevice(t *testing.T, r record, id int64, name, description string, tags []string) {
	t.Helper()
	eq(t, "resource device.type", str(r.Resource, "device.type"), "smtp")
	eq(t, "resource device.name", str(r.Resource, "device.name"), name)
	gotID, ok := integer(r.Resource, "device.id")
	if !ok {
		t.Errorf("resource device.id missing or not an int: %q", str(r.Resource, "device.id"))
	}
	eq(t, "resource device.id", gotID, id)
	eq(t, "resource device.description", str(r.Resource, "device.description"), description)
	eqList(t, "resource device.tags", strs(r.Resource, "device.tags"), tags)
}

// checkTLSAuth asserts the TLS and AUTH facts of a record.
func checkTLSAuth(t *testing.T, r record, user string) {
	t.Helper()
	eq(t, "attribute user.name", str(r.Attrs, "user.name"), user)
	v := str(r.Attrs, "tls.protocol.version")
	if v != "1.2" && v != "1.3" {
		t.Errorf("attribute tls.protocol.version: got %q, want 1.2 or 1.3", v)
	}
	if str(r.Attrs, "tls.cipher") == "" {
		t.Errorf("attribute tls.cipher missing")
	}
	client, _ := submap(r.Body, "client")
	eq(t, "body client.auth_user", str(client, "auth_user"), user)
	eq(t, "body client.tls_version", str(client, "tls_version"), v)
}

// checkNoParseError asserts a well-formed message produced no parse error.
func checkNoParseError(t *testing.T, r record) {
	t.Helper()
	if has(r.Attrs, "email.parse_error") {
		t.Errorf("unexpected email.parse_error: %q", str(r.Attrs, "email.parse_error"))
	}
	if has(r.Body, "parse_errors") {
		t.Errorf("unexpected body parse_errors: %q", strs(r.Body, "parse_errors"))
	}
}

// headerValues looks a header name up case-insensitively in the body's
// headers map.
func headerValues(headers pcommon.Map, name string) []string {
	var out []string
	headers.Range(func(k string, _ pcommon.Value) bool {
		if strings.EqualFold(k, name) {
			out = append(out, strs(headers, k)...)
		}
		return true
	})
	return out
}

// writeEML writes a small RFC 5322 message with CRLF line ends.
func writeEML(t *testing.T, dir, from, to, subject, body string) string {
	t.Helper()
	msg := strings.Join([]string{
		"From: " + from,
		"To: " + to,
		"Subject: " + subject,
		"Date: " + time.Now().UTC().Format(time.RFC1123Z),
		fmt.Sprintf("Message-ID: <%d.e2e@example.com>", time.Now().UnixNano()),
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"",
		body,
		"",
	}, "\r\n")
	path := filepath.Join(dir, fmt.Sprintf("mail-%d.eml", time.Now().UnixNano()))
	return writeFile(t, path, msg)
}

// Server replies and client lines of a verbose swaks transcript ("<-", "<~",
// "<**" for errors; "->", "~>" for what the client sent) or curl -v output
// ("< ", "> ").
var (
	replyRe   = regexp.MustCompile(`^\s*(?:<-|<~|<\*\*|<~\*|<)\s+(\d{3})(?:[ -]|$)`)
	dataEndRe = regexp.MustCompile(`^\s*(?:->|~>)\s+\.\s*$`)
	mailRe    = regexp.MustCompile(`^\s*(?:->|~>|>)\s+(?i:MAIL FROM)`)
)

// finalReply returns the code of the reply that decided the transaction:
// the reply to the end of DATA when the transcript shows it, otherwise the
// last reply after MAIL that is not the 221 to QUIT (e.g. a 530 to MAIL).
// 0: the client never got as far as MAIL.
func finalReply(transcript string) int {
	last, afterMail, afterDot := 0, false, false
	for _, line := range strings.Split(transcript, "\n") {
		if mailRe.MatchString(line) {
			afterMail = true
			continue
		}
		if !afterMail {
			continue
		}
		if dataEndRe.MatchString(line) {
			afterDot = true
			continue
		}
		m := replyRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		code, _ := strconv.Atoi(m[1])
		if afterDot {
			return code
		}
		if code != 221 {
			last = code
		}
	}
	return last
}

// ---------------------------------------------------------------- 1. python multipart

func TestPythonMultipart(t *testing.T) {
	c := startCollector(t, simpleConfig("e2e_python", `
id: 101
name: e2e_python
description: E2E device for python smtplib
tags: [e2e, python]
`))
	tl := counts(t)

	dir := t.TempDir()
	attachment := make([]byte, 3000)
	for i := range attachment {
		attachment[i] = byte(i*7%251 + 1)
	}
	attPath := writeFile(t, filepath.Join(dir, "data.bin"), string(attachment))
	sum := sha256.Sum256(attachment)
	wantSHA := hex.EncodeToString(sum[:])

	const (
		subject = "Grüße aus Köln ✓ — e2e"
		text    = "Hallo Welt,\nthis is the plain part.\nZeile 3: äöü\n"
		html    = "<html><body><p>Hallo <b>Welt</b> ✓</p></body></html>\n"
		from    = "alice@example.com"
		rcpt1   = "ops@example.org"
		rcpt2   = "audit@example.net"
	)
	res := python(t, "--port", strconv.Itoa(c.port), "--mail-from", from,
		"--rcpt", rcpt1, "--rcpt", rcpt2,
		"--header-from", "Alice Example <alice@example.com>",
		"--subject", subject, "--text", text, "--html", html,
		"--attach", attPath+"::application/x-e2e-data")
	tl.reply(res.Code)
	if res.Result != "ok" {
		t.Fatalf("python sendmail failed: %+v", res)
	}
	// The client really sent an RFC 2047 encoded subject.
	if !regexp.MustCompile(`(?mi)^Subject: =\?utf-8\?`).MatchString(res.Raw) {
		t.Fatalf("the python message has no RFC 2047 encoded Subject:\n%s", res.Raw)
	}

	recs := c.waitExactly(1)
	tl.exported(len(recs))
	if len(recs) == 0 {
		return
	}
	r := recs[0]
	b := r.Body

	checkDevice(t, r, 101, "e2e_python", "E2E device for python smtplib", []string{"e2e", "python"})

	// Body map, field by field.
	eq(t, "body from", str(b, "from"), from)
	eqList(t, "body to", strs(b, "to"), []string{rcpt1, rcpt2})
	eq(t, "body subject", str(b, "subject"), subject)
	body := str(b, "body")
	if strings.Contains(body, "\r") {
		t.Errorf("body text contains CR (line ends must be LF): %q", body)
	}
	eq(t, "body body (trailing newlines trimmed)", strings.TrimRight(body, "\n"), strings.TrimRight(text, "\n"))
	if h := str(b, "html"); !strings.Contains(h, "<b>Welt</b> ✓") {
		t.Errorf("body html: got %q, want the HTML part", h)
	}
	headers, ok := submap(b, "headers")
	if !ok {
		t.Fatalf("body headers is not a map; body keys %v", sortedKeys(b))
	}
	if got := strs(headers, "Subject"); len(got) != 1 || got[0] != subject {
		t.Errorf("body headers[Subject]: got %q, want [%q] (header keys %v)", got, subject, sortedKeys(headers))
	}
	// Header names: README says "spelled as first seen", the converter
	// may also canonicalize (Message-Id); accept either spelling.
	if got := headerValues(headers, "Message-ID"); len(got) != 1 {
		t.Errorf("body headers[Message-ID]: got %q (header keys %v)", got, sortedKeys(headers))
	}
	eq(t, "body remoteAddr host", hostOf(t, "body remoteAddr", str(b, "remoteAddr")), "127.0.0.1")

	hf := sliceOfMaps(b, "header_from")
	if len(hf) != 1 {
		t.Errorf("body header_from: want 1 entry, got %d", len(hf))
	} else {
		eq(t, "body header_from[0].name", str(hf[0], "name"), "Alice Example")
		eq(t, "body header_from[0].address", str(hf[0], "address"), from)
	}
	var hto []string
	for _, m := range sliceOfMaps(b, "header_to") {
		hto = append(hto, str(m, "address"))
	}
	eqList(t, "body header_to addresses", hto, []string{rcpt1, rcpt2})
	if !strings.HasSuffix(str(b, "message_id"), "@e2e.example.com") {
		t.Errorf("body message_id: got %q", str(b, "message_id"))
	}
	if _, err := time.Parse(time.RFC3339, str(b, "date")); err != nil {
		t.Errorf("body date: %q is not RFC 3339: %v", str(b, "date"), err)
	}
	if _, err := time.Parse(time.RFC3339Nano, str(b, "received_at")); err != nil {
		t.Errorf("body received_at: %q is not RFC 3339: %v", str(b, "received_at"), err)
	}

	atts := sliceOfMaps(b, "attachments")
	if len(atts) != 1 {
		t.Errorf("body attachments: want 1, got %d", len(atts))
	} else {
		a := atts[0]
		eq(t, "attachments[0].filename", str(a, "filename"), "data.bin")
		mt, _, err := mime.ParseMediaType(str(a, "content_type"))
		if err != nil {
			mt = str(a, "content_type")
		}
		eq(t, "attachments[0].content_type", mt, "application/x-e2e-data")
		size, _ := integer(a, "size")
		eq(t, "attachments[0].size", size, int64(len(attachment)))
		eq(t, "attachments[0].sha256", str(a, "sha256"), wantSHA)
	}

	client, ok := submap(b, "client")
	if !ok {
		t.Errorf("body client is not a map")
	}
	eq(t, "body client.address", str(client, "address"), "127.0.0.1")
	eq(t, "body client.helo", str(client, "helo"), "e2e-python.example.com")
	if has(client, "tls_version") || has(client, "auth_user") {
		t.Errorf("body client has TLS/AUTH facts on a plain session: %v", sortedKeys(client))
	}
	bsize, _ := integer(b, "size")
	if d := bsize - int64(len(res.Raw)); d < -2 || d > 2 {
		t.Errorf("body size: got %d, want about %d (the message as sent)", bsize, len(res.Raw))
	}
	checkNoParseError(t, r)

	// Attributes.
	eq(t, "attribute client.address", str(r.Attrs, "client.address"), "127.0.0.1")
	if p, ok := integer(r.Attrs, "client.port"); !ok || p <= 0 {
		t.Errorf("attribute client.port: got %v", str(r.Attrs, "client.port"))
	}
	eq(t, "attribute smtp.helo", str(r.Attrs, "smtp.helo"), "e2e-python.example.com")
	eq(t, "attribute smtp.mail_from", str(r.Attrs, "smtp.mail_from"), from)
	eqList(t, "attribute smtp.rcpt_to", strs(r.Attrs, "smtp.rcpt_to"), []string{rcpt1, rcpt2})
	eq(t, "attribute email.subject", str(r.Attrs, "email.subject"), subject)
	eq(t, "attribute email.message_id", str(r.Attrs, "email.message_id"), str(b, "message_id"))
	eqList(t, "attribute email.from.address", strs(r.Attrs, "email.from.address"), []string{from})
	eqList(t, "attribute email.to.address", strs(r.Attrs, "email.to.address"), []string{rcpt1, rcpt2})
	n, _ := integer(r.Attrs, "email.attachments.count")
	eq(t, "attribute email.attachments.count", n, int64(1))
	ms, _ := integer(r.Attrs, "smtp.message.size")
	eq(t, "attribute smtp.message.size", ms, bsize)
	for _, k := range []string{"tls.protocol.version", "tls.cipher", "user.name"} {
		if has(r.Attrs, k) {
			t.Errorf("attribute %s set on a plain, unauthenticated session: %q", k, str(r.Attrs, k))
		}
	}
	if r.LR.Timestamp() == 0 || r.LR.ObservedTimestamp() == 0 {
		t.Errorf("timestamps not set: %v / %v", r.LR.Timestamp(), r.LR.ObservedTimestamp())
	}
}

// ---------------------------------------------------------------- 2. curl

func TestCurl(t *testing.T) {
	curl := need(t, "curl")
	c := startCollector(t, simpleConfig("e2e_curl", `
id: 102
name: e2e_curl
tags: [e2e, curl]
`))
	tl := counts(t)
	const subject = "Hello from curl e2e"
	const text = "Body sent by curl.\nSecond line."
	eml := writeEML(t, t.TempDir(), "Bob <bob@example.com>", "ops@example.org", subject, text)
	tl.reply(curlSend(t, curl, "smtp://"+c.addr(), "bob@example.com", eml))
	recs := c.waitExactly(1)
	tl.exported(len(recs))
	if len(recs) == 0 {
		return
	}
	r := recs[0]
	checkEnvelopeAndText(t, r, "bob@example.com", subject, text)
	eq(t, "resource device.name", str(r.Resource, "device.name"), "e2e_curl")
	checkNoParseError(t, r)
}

// ---------------------------------------------------------------- 3. swaks

func TestSwaks(t *testing.T) {
	swaks := need(t, "swaks")
	c := startCollector(t, simpleConfig("e2e_swaks", `
id: 103
name: e2e_swaks
tags: [e2e, swaks]
`))
	tl := counts(t)
	const subject = "Hello from swaks e2e"
	const text = "Body sent by swaks."
	res := run(t, nil, swaks, "--server", c.addr(), "--timeout", "30",
		"--helo", "e2e-swaks.example.com",
		"--from", "carol@example.com", "--to", "ops@example.org",
		"--header", "Subject: "+subject, "--body", text)
	code := finalReply(res.Stdout)
	tl.reply(code)
	if res.Code != 0 || code != 250 {
		t.Fatalf("swaks failed (last reply %d): %s", code, res)
	}
	recs := c.waitExactly(1)
	tl.exported(len(recs))
	if len(recs) == 0 {
		return
	}
	r := recs[0]
	checkEnvelopeAndText(t, r, "carol@example.com", subject, text)
	eq(t, "attribute smtp.helo", str(r.Attrs, "smtp.helo"), "e2e-swaks.example.com")
	if hs, _ := submap(r.Body, "headers"); len(headerValues(hs, "X-Mailer")) != 1 {
		t.Errorf("body headers[X-Mailer] (swaks sets one): %q", headerValues(hs, "X-Mailer"))
	}
	checkNoParseError(t, r)

	// Issue 10.10: swaks --to postmaster sends RCPT TO:<postmaster>, with no
	// domain (RFC 5321 4.5.1); it is accepted and recorded as this
	// server's postmaster.
	const pmSubject = "swaks to the postmaster"
	res = run(t, nil, swaks, "--server", c.addr(), "--timeout", "30",
		"--from", "carol@example.com", "--to", "postmaster",
		"--header", "Subject: "+pmSubject, "--body", text)
	code = finalReply(res.Stdout)
	tl.reply(code)
	if res.Code != 0 || code != 250 || !strings.Contains(res.Stdout, "RCPT TO:<postmaster>") {
		t.Fatalf("swaks --to postmaster failed (last reply %d): %s", code, res)
	}
	checkPostmaster(t, c.waitSubject(pmSubject))
	tl.exported(1)
}

// checkPostmaster checks that a record's one envelope recipient is this
// server's postmaster.
func checkPostmaster(t *testing.T, r record) {
	t.Helper()
	rcpts := strs(r.Attrs, "smtp.rcpt_to")
	if len(rcpts) != 1 || !strings.HasPrefix(rcpts[0], "postmaster@") || len(rcpts[0]) == len("postmaster@") {
		t.Errorf("attribute smtp.rcpt_to: got %q, want [postmaster@<the receiver's domain>]", rcpts)
	}
}

// ---------------------------------------------------------------- 4. failing exporter

func TestFailingExporter(t *testing.T) {
	// A port that was open a moment ago and is closed now: connection refused.
	closed := freePort(t)
	cfg := func(t *testing.T, dir string, port int, _ string) []string {
		return []string{writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`receivers:
  smtp/e2e_failing:
    address: 127.0.0.1
    port: %d
    name: e2e_failing
exporters:
  otlp_http:
    endpoint: http://127.0.0.1:%d
    timeout: 5s
    sending_queue:
      enabled: false
    retry_on_failure:
      enabled: false
service:
%s  pipelines:
    logs/e2e_failing:
      receivers: [smtp/e2e_failing]
      exporters: [otlp_http]
`, port, closed, quietTelemetry))}
	}
	c := startCollector(t, cfg)

	leaks := []string{"127.0.0.1:", "connection refused", "dial tcp", "failed to make", "http://", "otlp", "Post "}
	checkText := func(t *testing.T, text string) {
		t.Helper()
		for _, l := range leaks {
			if strings.Contains(strings.ToLower(text), strings.ToLower(l)) {
				t.Errorf("reply text leaks internal error detail %q: %q", l, text)
			}
		}
	}

	t.Run("python", func(t *testing.T) {
		tl := counts(t)
		res := python(t, "--port", strconv.Itoa(c.port), "--mail-from", "dave@example.com",
			"--rcpt", "ops@example.org", "--subject", "must not be accepted")
		tl.reply(res.Code)
		if res.Result == "ok" || res.Code == 250 {
			t.Fatalf("got 250 although the only exporter fails: %+v", res)
		}
		eq(t, "exception", res.Exception, "SMTPDataError")
		eq(t, "reply code", res.Code, 451)
		if !strings.Contains(res.Message, "4.3.0") {
			t.Errorf("reply text: got %q, want the enhanced code 4.3.0", res.Message)
		}
		checkText(t, res.Message)
	})

	t.Run("swaks", func(t *testing.T) {
		swaks := need(t, "swaks")
		tl := counts(t)
		res := run(t, nil, swaks, "--server", c.addr(), "--timeout", "30",
			"--from", "dave@example.com", "--to", "ops@example.org",
			"--header", "Subject: must not be accepted either")
		code := finalReply(res.Stdout)
		tl.reply(code)
		if res.Code == 0 {
			t.Fatalf("swaks succeeded although the only exporter fails: %s", res)
		}
		eq(t, "last reply code", code, 451)
		// The transcript line of the DATA reply.
		for _, line := range strings.Split(res.Stdout, "\n") {
			if strings.Contains(line, " 451 ") {
				checkText(t, line)
			}
		}
	})

	// The collector itself knows why: its log names the export failure.
	if !strings.Contains(c.log(), "127.0.0.1:"+strconv.Itoa(closed)) {
		t.Logf("note: the collector log does not mention the exporter endpoint")
	}
}

// ---------------------------------------------------------------- 5. STARTTLS + AUTH

func secureConfig(name string, id int, certs tlsFiles, implicit bool) configFunc {
	return simpleConfig(name, fmt.Sprintf(`
id: %d
name: %s
tags: [e2e, secure]
username: %s
password: ${env:SMTP_PASSWORD}
timeout: 30
service_root: %q
tls:
  status: true
  cert_name: server.crt
  key_name: server.key
  implicit: %t
`, id, name, authUser, certs.Dir, implicit))
}

func TestSecureSTARTTLS(t *testing.T) {
	certs := makeCerts(t, t.TempDir())
	c := startCollector(t, secureConfig("e2e_secure", 105, certs, false), "SMTP_PASSWORD="+authPassword)

	for _, client := range tlsClients {
		t.Run(client.name+"_starttls_auth", func(t *testing.T) {
			sendThroughTLS(t, c, certs, client, false)
		})
	}
	t.Run("python_checks_device", func(t *testing.T) {
		tl := counts(t)
		subject := "secure python device " + strconv.FormatInt(time.Now().UnixNano(), 36)
		code := sendPythonTLS(t, c, certs, false, subject)
		tl.reply(code)
		r := c.waitSubject(subject)
		tl.exported(1)
		checkDevice(t, r, 105, "e2e_secure", "", []string{"e2e", "secure"})
	})

	t.Run("python_starttls_postmaster", func(t *testing.T) {
		// RCPT TO:<postmaster> inside TLS: the rewrite works after STARTTLS.
		tl := counts(t)
		subject := "secure postmaster " + strconv.FormatInt(time.Now().UnixNano(), 36)
		res := python(t, "--port", strconv.Itoa(c.port), "--mode", "starttls", "--cafile", certs.CA,
			"--user", authUser, "--password", authPassword,
			"--mail-from", "erin@example.com", "--rcpt", "postmaster", "--subject", subject)
		tl.reply(res.Code)
		if res.Result != "ok" || res.Code != 250 {
			t.Fatalf("python starttls to postmaster: %+v", res)
		}
		checkPostmaster(t, c.waitSubject(subject))
		tl.exported(1)
	})

	t.Run("python_without_starttls_530", func(t *testing.T) {
		tl := counts(t)
		subject := "no starttls " + strconv.FormatInt(time.Now().UnixNano(), 36)
		res := python(t, "--port", strconv.Itoa(c.port), "--mode", "plain",
			"--mail-from", "mallory@example.com", "--rcpt", "ops@example.org", "--subject", subject)
		tl.reply(res.Code)
		eq(t, "exception", res.Exception, "SMTPSenderRefused")
		eq(t, "MAIL reply code", res.Code, 530)
		if !strings.Contains(res.Message, "5.7.0") || !strings.Contains(res.Message, "STARTTLS") {
			t.Errorf("MAIL reply text: got %q, want 5.7.0 Must issue a STARTTLS command first", res.Message)
		}
		if n := countSubject(c.settledRecords(), subject); n != 0 {
			t.Errorf("%d records exported for a refused mail", n)
		}
	})

	t.Run("python_wrong_password_535", func(t *testing.T) {
		tl := counts(t)
		subject := "wrong password " + strconv.FormatInt(time.Now().UnixNano(), 36)
		res := python(t, "--port", strconv.Itoa(c.port), "--mode", "starttls", "--cafile", certs.CA,
			"--user", authUser, "--password", "not-the-password",
			"--mail-from", "mallory@example.com", "--rcpt", "ops@example.org", "--subject", subject)
		tl.reply(res.Code)
		eq(t, "exception", res.Exception, "SMTPAuthenticationError")
		eq(t, "AUTH reply code", res.Code, 535)
		if !strings.Contains(res.Message, "5.7.8") {
			t.Errorf("AUTH reply text: got %q, want enhanced code 5.7.8", res.Message)
		}
		if n := countSubject(c.settledRecords(), subject); n != 0 {
			t.Errorf("%d records exported after failed AUTH", n)
		}
	})

	t.Run("swaks_auth_plain_without_tls_refused", func(t *testing.T) {
		swaks := need(t, "swaks")
		tl := counts(t)
		subject := "plain auth no tls " + strconv.FormatInt(time.Now().UnixNano(), 36)
		// AUTH is not offered before STARTTLS: swaks --auth must give up.
		res := run(t, nil, swaks, "--server", c.addr(), "--timeout", "30",
			"--auth", "PLAIN", "--auth-user", authUser, "--auth-password", authPassword,
			"--from", "erin@example.com", "--to", "ops@example.org", "--header", "Subject: "+subject)
		tl.reply(finalReply(res.Stdout))
		if res.Code == 0 {
			t.Errorf("swaks --auth PLAIN without TLS succeeded: %s", res)
		}
		if strings.Contains(res.Stdout, "235 ") {
			t.Errorf("AUTH succeeded in clear text: %s", res)
		}
		// With --auth-optional swaks goes on to MAIL without AUTH: 530.
		res = run(t, nil, swaks, "--server", c.addr(), "--timeout", "30",
			"--auth-optional", "PLAIN", "--auth-user", authUser, "--auth-password", authPassword,
			"--from", "erin@example.com", "--to", "ops@example.org", "--header", "Subject: "+subject)
		code := finalReply(res.Stdout)
		tl.reply(code)
		if res.Code == 0 || code != 530 {
			t.Errorf("swaks --auth-optional without TLS: want MAIL refused with 530, got exit %d / last reply %d: %s", res.Code, code, res)
		}
		if n := countSubject(c.settledRecords(), subject); n != 0 {
			t.Errorf("%d records exported for mail sent without TLS", n)
		}
	})

	t.Run("raw_auth_plain_before_starttls", func(t *testing.T) {
		// What swaks cannot do: force AUTH PLAIN with valid credentials in
		// clear text. The server must refuse it.
		tl := counts(t)
		conn, err := net.DialTimeout("tcp", c.addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		tp := textproto.NewConn(conn)
		if _, _, err := tp.ReadResponse(220); err != nil {
			t.Fatalf("greeting: %v", err)
		}
		id, _ := tp.Cmd("EHLO e2e-raw.example.com")
		tp.StartResponse(id)
		_, ehlo, err := tp.ReadResponse(250)
		tp.EndResponse(id)
		if err != nil {
			t.Fatalf("EHLO: %v", err)
		}
		if !strings.Contains(ehlo, "STARTTLS") {
			t.Errorf("EHLO does not offer STARTTLS: %q", ehlo)
		}
		for _, l := range strings.Split(ehlo, "\n") {
			if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
				t.Errorf("AUTH offered before STARTTLS: %q", l)
			}
		}
		cred := base64.StdEncoding.EncodeToString([]byte("\x00" + authUser + "\x00" + authPassword))
		id, _ = tp.Cmd("AUTH PLAIN %s", cred)
		tp.StartResponse(id)
		code, msg, err := tp.ReadResponse(0)
		tp.EndResponse(id)
		tl.reply(code)
		t.Logf("AUTH PLAIN before STARTTLS: %d %s (%v)", code, msg, err)
		if code < 500 {
			t.Errorf("AUTH PLAIN before STARTTLS: got %d %q, want a 5xx refusal", code, msg)
		}
		_, _ = tp.Cmd("QUIT")
	})

	t.Run("password_not_logged", func(t *testing.T) {
		if strings.Contains(c.log(), authPassword) {
			t.Errorf("the collector output contains the AUTH password")
		}
	})
}

// ---------------------------------------------------------------- 6. implicit TLS

func TestImplicitTLS(t *testing.T) {
	certs := makeCerts(t, t.TempDir())
	c := startCollector(t, secureConfig("e2e_smtps", 106, certs, true), "SMTP_PASSWORD="+authPassword)

	for _, client := range tlsClients {
		t.Run(client.name+"_implicit_tls_auth", func(t *testing.T) {
			sendThroughTLS(t, c, certs, client, true)
		})
	}
}

// tlsClient sends one authenticated mail over TLS (STARTTLS, or TLS from the
// first byte when implicit) and returns the reply code of the last command.
type tlsClient struct {
	name string
	send func(t *testing.T, c *collector, certs tlsFiles, implicit bool, subject string) int
}

// tlsClients is the matrix of real clients every TLS mode is tried with.
var tlsClients = []tlsClient{
	{"swaks", sendSwaksTLS},
	{"curl", sendCurlTLS},
	{"python", sendPythonTLS},
}

// sendThroughTLS sends one mail with client and checks that the record
// carries the TLS session and the authenticated user.
func sendThroughTLS(t *testing.T, c *collector, certs tlsFiles, client tlsClient, implicit bool) {
	t.Helper()
	tl := counts(t)
	subject := fmt.Sprintf("%s tls implicit=%t %s", client.name, implicit, strconv.FormatInt(time.Now().UnixNano(), 36))
	code := client.send(t, c, certs, implicit, subject)
	tl.reply(code)
	if code != 250 {
		t.Fatalf("%s over TLS (implicit=%t): last reply %d, want 250", client.name, implicit, code)
	}
	r := c.waitSubject(subject)
	tl.exported(1)
	checkTLSAuth(t, r, authUser)
}

func sendSwaksTLS(t *testing.T, c *collector, certs tlsFiles, implicit bool, subject string) int {
	swaks := need(t, "swaks")
	mode, mech := "--tls", "LOGIN"
	if implicit {
		mode, mech = "--tls-on-connect", "PLAIN"
	}
	res := run(t, nil, swaks, "--server", c.addr(), "--timeout", "30",
		mode, "--tls-verify", "--tls-ca-path", certs.CA,
		"--auth", mech, "--auth-user", authUser, "--auth-password", authPassword,
		"--from", "erin@example.com", "--to", "ops@example.org",
		"--header", "Subject: "+subject, "--body", "via swaks "+mode+" and AUTH "+mech)
	code := finalReply(res.Stdout)
	if res.Code != 0 {
		t.Logf("swaks: %s", res)
	}
	return code
}

func sendCurlTLS(t *testing.T, c *collector, certs tlsFiles, implicit bool, subject string) int {
	curl := need(t, "curl")
	url, extra := "smtp://"+c.addr(), []string{"--ssl-reqd"}
	if implicit {
		url, extra = "smtps://"+c.addr(), nil
	}
	eml := writeEML(t, t.TempDir(), "erin@example.com", "ops@example.org", subject, "via curl "+url)
	return curlSend(t, curl, url, "erin@example.com", eml,
		append(extra, "--cacert", certs.CA, "--user", authUser+":"+authPassword)...)
}

func sendPythonTLS(t *testing.T, c *collector, certs tlsFiles, implicit bool, subject string) int {
	mode := "starttls"
	if implicit {
		mode = "ssl"
	}
	res := python(t, "--port", strconv.Itoa(c.port), "--mode", mode, "--cafile", certs.CA,
		"--user", authUser, "--password", authPassword,
		"--mail-from", "erin@example.com", "--rcpt", "ops@example.org", "--subject", subject)
	if res.Result != "ok" {
		t.Fatalf("python %s/login/sendmail failed: %+v", mode, res)
	}
	eq(t, "AUTH reply", res.AuthCode, 235)
	return res.Code
}

// ---------------------------------------------------------------- 7. examples

func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/*.yaml (%v)", err)
	}
	env := []string{"SMTP_PASSWORD=e2e-example-password"}
	// validate loads the certificate files the TLS examples name, from the
	// service root: the working directory, as in the examples' comments.
	serviceRoot := t.TempDir()
	certs := makeCerts(t, serviceRoot)
	for from, to := range map[string]string{certs.Cert: "smtp.crt", certs.Key: "smtp.key"} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(serviceRoot, to), string(data))
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "devices.yaml" || base == "exporters-file.yaml" {
			continue
		}
		t.Run("validate/"+base, func(t *testing.T) {
			cmd := runIn(t, serviceRoot, env, binary, "validate", "--config", f)
			if cmd.Code != 0 {
				t.Errorf("%s validate --config %s: %s", binary, f, cmd)
			}
		})
	}
	t.Run("validate/basic.yaml+exporters-file.yaml", func(t *testing.T) {
		cmd := run(t, env, binary, "validate",
			"--config", filepath.Join(repoRoot, "examples", "basic.yaml"),
			"--config", filepath.Join(repoRoot, "examples", "exporters-file.yaml"))
		if cmd.Code != 0 {
			t.Errorf("validate basic.yaml + exporters-file.yaml: %s", cmd)
		}
	})

	// exampleWithFileExporter starts an example with an override file that
	// moves it to a free port (the examples' fixed ports may be in use on a
	// developer machine), adds the file exporter and replaces the
	// pipeline's exporters (lists are replaced by a later --config).
	exampleWithFileExporter := func(example, receiver, pipeline string) configFunc {
		return func(t *testing.T, dir string, port int, out string) []string {
			override := fmt.Sprintf(`receivers:
  %s:
    port: %d
exporters:
%s
service:
%s  pipelines:
    %s:
      exporters: [file]
`, receiver, port, fileExporter(out), quietTelemetry, pipeline)
			return []string{
				filepath.Join(repoRoot, "examples", example),
				writeFile(t, filepath.Join(dir, "override.yaml"), override),
			}
		}
	}

	t.Run("run/basic.yaml", func(t *testing.T) {
		swaks := need(t, "swaks")
		c := startCollector(t, exampleWithFileExporter("basic.yaml", "smtp/basic_smtp", "logs/basic_smtp"))
		tl := counts(t)
		const subject = "basic example e2e"
		res := run(t, nil, swaks, "--server", c.addr(), "--timeout", "30",
			"--from", "gina@example.com", "--to", "ops@example.org", "--header", "Subject: "+subject)
		code := finalReply(res.Stdout)
		tl.reply(code)
		if res.Code != 0 || code != 250 {
			t.Fatalf("swaks failed (last reply %d): %s", code, res)
		}
		recs := c.waitExactly(1)
		tl.exported(len(recs))
		if len(recs) == 1 {
			r := recs[0]
			eq(t, "subject", str(r.Attrs, "email.subject"), subject)
			checkDevice(t, r, 1, "basic_smtp", "A simple SMTP server", []string{"example", "basic"})
		}
	})

	t.Run("run/pipeline.yaml", func(t *testing.T) {
		c := startCollector(t, exampleWithFileExporter("pipeline.yaml", "smtp/pipeline_smtp", "logs/pipeline_smtp"))
		tl := counts(t)
		send := func(subject string, headers ...string) {
			t.Helper()
			args := []string{"--port", strconv.Itoa(c.port), "--mail-from", "hank@example.com",
				"--header-from", "Hank <Hank@Mail.Example.COM>",
				"--rcpt", "ops@example.org", "--subject", subject}
			for _, h := range headers {
				args = append(args, "--header", h)
			}
			res := python(t, args...)
			tl.reply(res.Code)
			if res.Result != "ok" {
				t.Fatalf("sending %q: %+v", subject, res)
			}
		}
		// Spam first, ham last: once the ham is exported, the spam would
		// already be there if the filter had let it through.
		send("spam by flag", "X-Spam-Flag: YES")
		send("spam by score", "X-Spam-Score: 9.1")
		send("spam by status", "X-SPAM-STATUS: Yes, score=12.0 required=5.0")
		send("ham with low score", "X-Spam-Score: 1.5", "X-Mailer: e2e-mailer/1.0")
		ham := c.waitSubject("ham with low score")
		recs := c.settledRecords()
		tl.exported(len(recs))
		eq(t, "records exported (only the ham)", len(recs), 1)
		for _, s := range []string{"spam by flag", "spam by score", "spam by status"} {
			if countSubject(recs, s) != 0 {
				t.Errorf("spam %q was not dropped by filter/spam_filter", s)
			}
		}
		// transform/email_parser ran on the ham.
		eq(t, "attribute email.from.domain", str(ham.Attrs, "email.from.domain"), "mail.example.com")
		eq(t, "attribute smtp.mail_from.domain", str(ham.Attrs, "smtp.mail_from.domain"), "example.com")
		eq(t, "attribute email.x_mailer", str(ham.Attrs, "email.x_mailer"), "e2e-mailer/1.0")
		checkDevice(t, ham, 5, "pipeline_smtp", "SMTP server with email parsing and spam filtering", []string{"example", "pipeline"})
	})
}

// ---------------------------------------------------------------- 8. Postfix smtp-source

func TestPostfixSmtpSource(t *testing.T) {
	src := need(t, "smtp-source", "/usr/sbin/smtp-source", "/usr/lib/postfix/sbin/smtp-source", "/usr/libexec/postfix/smtp-source")
	c := startCollector(t, simpleConfig("e2e_postfix", `
id: 108
name: e2e_postfix
tags: [e2e, postfix]
`))
	tl := counts(t)
	const n = 50
	res := run(t, nil, src, "-c", "-m", strconv.Itoa(n), "-s", "5", "-l", "2048",
		"-f", "a@example.com", "-t", "b@example.com", c.addr())
	if res.Code != 0 {
		for i := 0; i < n; i++ {
			tl.reply(0)
		}
		t.Fatalf("smtp-source failed: %s", res)
	}
	// smtp-source stops at the first non-2xx reply: exit 0 means n × 250.
	for i := 0; i < n; i++ {
		tl.reply(250)
	}
	t.Logf("smtp-source: %d messages in %s", n, res.Duration.Round(time.Millisecond))
	recs := c.waitExactly(n)
	tl.exported(len(recs))
	for i, r := range recs {
		if str(r.Body, "from") != "a@example.com" || strings.Join(strs(r.Body, "to"), ",") != "b@example.com" {
			t.Errorf("record %d: envelope %q -> %q", i, str(r.Body, "from"), strs(r.Body, "to"))
			break
		}
		if size, _ := integer(r.Attrs, "smtp.message.size"); size < 2048 {
			t.Errorf("record %d: smtp.message.size %d < 2048 payload bytes", i, size)
			break
		}
	}
}

// curlSend delivers eml to ops@example.org with curl and returns the final
// reply code; extra carries TLS and AUTH options. A failed transfer fails
// the test after the caller has had the code to count.
func curlSend(t *testing.T, curl, url, from, eml string, extra ...string) int {
	t.Helper()
	args := append([]string{"-sS", "-v", "--max-time", "60", "--url", url,
		"--mail-from", from, "--mail-rcpt", "ops@example.org", "--upload-file", eml}, extra...)
	res := run(t, nil, curl, args...)
	code := 250
	if res.Code != 0 {
		code = finalReply(res.Stderr)
	}
	if res.Code != 0 {
		t.Errorf("curl %s failed: %s", url, res)
	}
	return code
}

// checkEnvelopeAndText checks the fields every client scenario sets: the
// envelope (to ops@example.org), the subject and the text body.
func checkEnvelopeAndText(t *testing.T, r record, from, subject, text string) {
	t.Helper()
	eq(t, "body subject", str(r.Body, "subject"), subject)
	eq(t, "body body", strings.TrimRight(str(r.Body, "body"), "\n"), text)
	eq(t, "body from", str(r.Body, "from"), from)
	eqList(t, "body to", strs(r.Body, "to"), []string{"ops@example.org"})
}
