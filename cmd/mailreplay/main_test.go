package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

// ---------------------------------------------------------------- server

// received is one message the test server accepted.
type received struct {
	from, user string
	to         []string
	data       string
	utf8       bool // MAIL FROM had SMTPUTF8
}

// testServer is a real go-smtp server on 127.0.0.1. It refuses the
// recipient refuse@example.org (550) and, once, data containing
// "X-Test: temp" (451); onData may cancel a run mid-way.
type testServer struct {
	addr     string
	mu       sync.Mutex
	msgs     []received
	tempDone map[string]bool
	onData   func(n int)
	auth     bool
}

func startServer(t *testing.T, withTLS bool) (*testServer, *x509.Certificate) {
	t.Helper()
	ts := &testServer{tempDone: map[string]bool{}, auth: withTLS}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &testSession{ts: ts}, nil }))
	srv.Domain = "test.example.org"
	srv.EnableSMTPUTF8 = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	var cert *x509.Certificate
	if withTLS {
		var tlsCert tls.Certificate
		tlsCert, cert = selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts, cert
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

type testSession struct {
	ts   *testServer
	user string
	from string
	to   []string
	utf8 bool
}

func (s *testSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *testSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "replay" || pass != "s3cret" {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *testSession) Mail(from string, opts *smtp.MailOptions) error {
	s.utf8 = opts != nil && opts.UTF8
	if s.ts.auth && s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == "refuse@example.org" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ts := s.ts
	ts.mu.Lock()
	if bytes.Contains(data, []byte("X-Test: temp")) && !ts.tempDone[string(data)] {
		ts.tempDone[string(data)] = true
		ts.mu.Unlock()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	}
	ts.msgs = append(ts.msgs, received{from: s.from, user: s.user, to: s.to, data: string(data), utf8: s.utf8})
	n, onData := len(ts.msgs), ts.onData
	ts.mu.Unlock()
	if onData != nil {
		onData(n)
	}
	return nil
}

func (s *testSession) Reset()        { s.from, s.to = "", nil }
func (s *testSession) Logout() error { return nil }

func selfSigned(t *testing.T) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert
}

// ---------------------------------------------------------------- inputs

// writeMbox writes msgs as an mbox with mboxrd quoting of "From " lines.
func writeMbox(t *testing.T, path string, msgs [][]byte) {
	t.Helper()
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString("From noreply-dmarc@receiver.example.com Mon Nov  2 01:02:03 2026\n")
		for _, line := range strings.SplitAfter(string(m), "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				b.WriteString(">")
			}
			b.WriteString(line)
		}
		if !bytes.HasSuffix(m, []byte("\n")) {
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fixtureMessages() [][]byte {
	var msgs [][]byte
	for _, f := range reportgen.Fixtures() {
		msgs = append(msgs, f.Message)
	}
	// A body line that an mbox must quote.
	msgs = append(msgs, []byte("From: a@example.org\r\nTo: b@example.org\r\nSubject: quoting\r\n\r\nFrom here on, quoted.\r\n>From stays quoted once.\r\n"))
	return msgs
}

// normalize makes the mbox's message (with its separator blank line) and
// what the server received comparable.
func normalize(s string) string {
	return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
}

func runReplay(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, func(k string) string {
		if k == "MAILREPLAY_PASSWORD" {
			return "s3cret"
		}
		return ""
	})
	t.Logf("mailreplay %s\nstdout:\n%s", strings.Join(args, " "), stdout.String())
	return code, stdout.String()
}

// ---------------------------------------------------------------- tests

// An mbox of the report fixtures, a Maildir and an .eml file are all sent,
// byte for byte, once; a second run with the resume file sends nothing.
func TestReplaySourcesAndResume(t *testing.T) {
	ts, _ := startServer(t, false)
	dir := t.TempDir()
	msgs := fixtureMessages()
	writeMbox(t, filepath.Join(dir, "reports.mbox"), msgs)
	maildir := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	maildirMsgs := map[string][]byte{
		"cur/1793577600.1.host:2,S": reportgen.DSN(),
		"new/1793577601.2.host":     reportgen.Feedback(),
		"tmp/1793577602.3.host":     []byte("Subject: still being delivered\r\n\r\nx\r\n"),
	}
	for name, data := range maildirMsgs {
		if err := os.WriteFile(filepath.Join(maildir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eml := filepath.Join(dir, "one.eml")
	single := reportgen.AggregateEmail("eml-1", "application/gzip", "r.xml.gz", reportgen.Gzip(reportgen.DefaultAggregate(reportgen.Draft).XML()))
	if err := os.WriteFile(eml, single, 0o644); err != nil {
		t.Fatal(err)
	}
	resume := filepath.Join(dir, "resume")
	args := []string{"-server", ts.addr, "-to", "dmarc@example.org", "-resume", resume, filepath.Join(dir, "reports.mbox"), maildir, eml}

	code, out := runReplay(t, context.Background(), args...)
	want := len(msgs) + 3
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d messages: %d sent, 0 refused, 0 failed, 0 skipped", want, want)) {
		t.Fatalf("exit %d, summary %q", code, out)
	}
	got := ts.messages()
	if len(got) != want {
		t.Fatalf("server received %d messages, want %d", len(got), want)
	}
	for i, m := range msgs {
		if normalize(got[i].data) != normalize(string(m)) {
			t.Errorf("mbox message %d differs:\n%q\nwant\n%q", i, got[i].data, m)
		}
		if got[i].from != "noreply-dmarc@receiver.example.com" || strings.Join(got[i].to, ",") != "dmarc@example.org" {
			t.Errorf("message %d envelope %q -> %v", i, got[i].from, got[i].to)
		}
	}
	if last := got[len(msgs)-1].data; !strings.Contains(last, "\r\nFrom here on") || !strings.Contains(last, "\r\n>From stays") {
		t.Errorf("mboxrd quoting not undone: %q", last)
	}
	if normalize(got[len(msgs)].data) != normalize(string(reportgen.DSN())) ||
		normalize(got[len(msgs)+1].data) != normalize(string(reportgen.Feedback())) ||
		normalize(got[len(msgs)+2].data) != normalize(string(single)) {
		t.Errorf("Maildir or .eml messages differ")
	}
	if got[len(msgs)+2].from != "noreply-dmarc@receiver.example.com" {
		t.Errorf(".eml sender from the From header: %q", got[len(msgs)+2].from)
	}

	code, out = runReplay(t, context.Background(), args...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("0 sent, 0 refused, 0 failed, %d skipped", want)) || len(ts.messages()) != want {
		t.Fatalf("second run: exit %d, %q, server has %d", code, out, len(ts.messages()))
	}
}

// Refusals are listed with the server's reply and not remembered as done:
// the next run sends them again; unreachable servers are failures.
func TestReplayRefusedAndFailed(t *testing.T) {
	ts, _ := startServer(t, false)
	dir := t.TempDir()
	writeMbox(t, filepath.Join(dir, "a.mbox"), [][]byte{
		[]byte("From: a@example.org\r\nTo: ok@example.org\r\nSubject: 1\r\n\r\none\r\n"),
		[]byte("From: a@example.org\r\nTo: refuse@example.org\r\nSubject: 2\r\n\r\ntwo\r\n"),
		[]byte("From: a@example.org\r\nTo: ok@example.org\r\nX-Test: temp\r\nSubject: 3\r\n\r\nthree\r\n"),
		[]byte("From: a@example.org\r\nSubject: 4 has no recipient\r\n\r\nfour\r\n"),
	})
	resume := filepath.Join(dir, "resume")
	args := []string{"-server", ts.addr, "-resume", resume, "-quiet", filepath.Join(dir, "a.mbox")}
	code, out := runReplay(t, context.Background(), args...)
	for _, want := range []string{
		"4 messages: 1 sent, 2 refused, 1 failed, 0 skipped",
		"refused " + filepath.Join(dir, "a.mbox") + "#2: 550 5.1.1 No such user",
		"refused " + filepath.Join(dir, "a.mbox") + "#3: 451 4.3.0 Try again later",
		"failed  " + filepath.Join(dir, "a.mbox") + "#4: no recipient",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if n := len(ts.messages()); n != 1 {
		t.Fatalf("server has %d messages, want 1", n)
	}
	// The second run skips what was accepted and sends the message that
	// had a temporary refusal (the server takes it this time).
	code, out = runReplay(t, context.Background(), args...)
	if !strings.Contains(out, "4 messages: 1 sent, 1 refused, 1 failed, 1 skipped") || code != 1 || len(ts.messages()) != 2 {
		t.Errorf("second run: exit %d %q", code, out)
	}

	code, out = runReplay(t, context.Background(), "-server", "127.0.0.1:1", "-to", "x@example.org", "-quiet", filepath.Join(dir, "a.mbox"))
	if code != 1 || !strings.Contains(out, "0 sent, 0 refused, 4 failed") || !strings.Contains(out, "connection refused") {
		t.Errorf("unreachable server: exit %d %q", code, out)
	}
}

// STARTTLS and AUTH PLAIN, with the server's certificate as CA.
func TestReplaySTARTTLSAuth(t *testing.T) {
	ts, cert := startServer(t, true)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(dir, "dsn.eml")
	if err := os.WriteFile(eml, reportgen.DSN(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runReplay(t, context.Background(), "-server", ts.addr, "-starttls", "-ca", ca, "-user", "replay", "-to", "postmaster@example.org", eml)
	got := ts.messages()
	if code != 0 || len(got) != 1 || got[0].user != "replay" {
		t.Fatalf("exit %d, %q, server got %+v", code, out, got)
	}
	// Without STARTTLS the server refuses to take mail.
	code, out = runReplay(t, context.Background(), "-server", ts.addr, "-to", "postmaster@example.org", eml)
	if code != 1 || !strings.Contains(out, "530 5.7.0") {
		t.Errorf("plain session: exit %d %q", code, out)
	}
}

// An interrupted run sends the rest, and only the rest, when run again.
func TestReplayInterruptedResumes(t *testing.T) {
	ts, _ := startServer(t, false)
	dir := t.TempDir()
	msgs := fixtureMessages()
	writeMbox(t, filepath.Join(dir, "r.mbox"), msgs)
	ctx, cancel := context.WithCancel(context.Background())
	ts.onData = func(n int) {
		if n == 3 {
			cancel()
		}
	}
	resume := filepath.Join(dir, "resume")
	args := []string{"-server", ts.addr, "-to", "dmarc@example.org", "-resume", resume, "-quiet", filepath.Join(dir, "r.mbox")}
	code, out := runReplay(t, ctx, args...)
	if code != 1 || !strings.Contains(out, "interrupted") || len(ts.messages()) != 3 {
		t.Fatalf("interrupted run: exit %d, %q, server has %d", code, out, len(ts.messages()))
	}
	ts.onData = nil
	code, out = runReplay(t, context.Background(), args...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d sent, 0 refused, 0 failed, 3 skipped", len(msgs)-3)) {
		t.Fatalf("resumed run: exit %d, %q", code, out)
	}
	seen := map[string]int{}
	for _, m := range ts.messages() {
		seen[normalize(m.data)]++
	}
	for i, m := range msgs {
		if seen[normalize(string(m))] != 1 {
			t.Errorf("message %d received %d times", i, seen[normalize(string(m))])
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-server", "127.0.0.1:25"},
		{"-server", "127.0.0.1:25", "-rate", "-1", "x"},
		{"-server", "127.0.0.1:25", "-user", "u", "x"},
		{"-server", "127.0.0.1:25", "/no/such/file"},
	} {
		if code, _ := runReplay(t, context.Background(), args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	var slept []time.Duration
	l := newLimiter(4)
	l.now = func() time.Time { return now }
	l.sleep = func(d time.Duration) { slept = append(slept, d); now = now.Add(d) }
	for i := 0; i < 3; i++ {
		l.wait()
	}
	now = now.Add(time.Second) // an idle second does not allow a burst
	l.wait()
	l.wait()
	if fmt.Sprint(slept) != "[250ms 250ms 250ms]" {
		t.Errorf("slept %v", slept)
	}
	unlimited := newLimiter(0)
	unlimited.sleep = func(time.Duration) { t.Error("slept without a rate") }
	unlimited.wait()
}

// Internationalized addresses go with SMTPUTF8.
func TestReplayUTF8Addresses(t *testing.T) {
	ts, _ := startServer(t, false)
	eml := filepath.Join(t.TempDir(), "global.eml")
	if err := os.WriteFile(eml, reportgen.GlobalDSN(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runReplay(t, context.Background(), "-server", ts.addr, "-from", "renée@example.org", "-to", "josé@example.com", "-quiet", eml)
	got := ts.messages()
	if code != 0 || len(got) != 1 || got[0].from != "renée@example.org" || got[0].to[0] != "josé@example.com" || !got[0].utf8 {
		t.Fatalf("exit %d, %q, server got %+v", code, out, got)
	}
}

func TestMboxHelpers(t *testing.T) {
	for in, want := range map[string]string{">From x": "From x", ">>From x": ">From x", ">Fromage": ">Fromage", "From": "From"} {
		if got := string(unquoteFrom([]byte(in))); got != want {
			t.Errorf("unquoteFrom(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"From a@example.org Mon Nov 2": "a@example.org", "From MAILER-DAEMON Mon": "", "From ": ""} {
		if got := mboxSender([]byte(in)); got != want {
			t.Errorf("mboxSender(%q) = %q, want %q", in, got, want)
		}
	}
}
