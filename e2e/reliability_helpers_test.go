//go:build reliability || scale

package e2e

// Helpers of the reliability suite (reliability_test.go): collectors on a
// fixed port and directory (restarts, OTLP sinks), SIGKILL, a raw SMTP
// client that can send DATA slowly or abort it, RSS sampling and a
// throwaway Postfix instance. All names start with rel or belong to types
// defined here, so the file compiles next to e2e_test.go under both tags.

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------- env knobs

// relEnvInt reads a positive integer from the environment, else def.
func relEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// relEnvDuration reads a Go duration from the environment, else def.
func relEnvDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// ---------------------------------------------------------------- collectors

// relStartAt starts bin/otelcol-smtp with the given config files, in dir,
// and waits until port accepts connections. Unlike startCollector the port is
// fixed by the caller: restarts of the same receiver (Postfix relays to it)
// and an OTLP sink whose port the sender's config names before it runs.
// logName names the output file inside dir, so restarts keep their logs.
func relStartAt(t *testing.T, dir string, port int, logName string, files []string, env ...string) *collector {
	t.Helper()
	c := &collector{
		t:       t,
		dir:     dir,
		port:    port,
		logPath: filepath.Join(dir, logName),
		exited:  make(chan struct{}),
	}
	if err := c.launch(files, env); err != nil {
		t.Fatalf("collector (%s): %v\n%s", logName, err, c.logTail())
	}
	return c
}

// sigkill kills the collector's process group with SIGKILL and waits
// (bounded) for it to be reaped: no shutdown code runs.
func (c *collector) sigkill() {
	c.t.Helper()
	select {
	case <-c.exited:
		c.t.Fatalf("collector had exited before SIGKILL: %v", c.waitErr)
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("collector pid %d not gone 10s after SIGKILL", c.cmd.Process.Pid)
	}
}

// sigterm asks the collector to shut down and waits up to limit for it to
// exit; it returns the exit error and how long the shutdown took.
func (c *collector) sigterm(limit time.Duration) (time.Duration, error) {
	c.t.Helper()
	start := time.Now()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return time.Since(start), c.waitErr
	case <-time.After(limit):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		return time.Since(start), fmt.Errorf("did not exit within %s after SIGTERM (SIGKILLed)", limit)
	}
}

// relSink starts a second otelcol-smtp as an OTLP/HTTP sink on port: the
// core otlp receiver feeding a file exporter with rotation (unbuffered: an
// export acknowledged to the sender is on disk).
func relSink(t *testing.T, port int) *collector {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "sink.jsonl")
	cfg := relOTLPSinkConfig("http", port, out)
	c := relStartAt(t, dir, port, "sink.log", []string{writeFile(t, filepath.Join(dir, "sink.yaml"), cfg)})
	c.out = out
	return c
}

// relOTLPSinkConfig is the config of an OTLP sink: the otlp receiver
// (protocol grpc or http) on 127.0.0.1:port feeding the file exporter.
func relOTLPSinkConfig(protocol string, port int, out string) string {
	return fmt.Sprintf(`receivers:
  otlp:
    protocols:
      %s:
        endpoint: 127.0.0.1:%d
exporters:
%s
service:
%s  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
`, protocol, port, relFileExporter(out), quietTelemetry)
}

// relFileExporter is fileExporter with a rotation size large enough that a
// run never rotates (a rotated file would hide records from readRecords).
func relFileExporter(out string) string { return fileExporterRotatingAt(out, 2000) }

// ---------------------------------------------------------------- exported records

// relIDs reads every file and counts the records per key attribute (e.g.
// email.subject or email.message_id). Records without the attribute count
// under "".
func relIDs(key string, paths ...string) (map[string]int, int, error) {
	ids := map[string]int{}
	total := 0
	for _, p := range paths {
		recs, err := readRecords(p)
		if err != nil {
			return ids, total, fmt.Errorf("%s: %w", p, err)
		}
		for _, r := range recs {
			ids[strings.Trim(str(r.Attrs, key), "<> ")]++
			total++
		}
	}
	return ids, total, nil
}

// relWaitAll polls the files (every interval, at most limit) until every id
// in want is exported at least once; then it waits settle more and reads
// once again to catch late duplicates. It returns the last counts.
func relWaitAll(t *testing.T, key string, want []string, limit, interval, settle time.Duration, paths ...string) (map[string]int, int) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var ids map[string]int
	var total int
	var err error
	for {
		ids, total, err = relIDs(key, paths...)
		missing := 0
		if err == nil {
			for _, w := range want {
				if ids[w] == 0 {
					missing++
				}
			}
		}
		if err == nil && missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("after %s: %d of %d ids still missing (read error: %v)", limit, missing, len(want), err)
			return ids, total
		}
		time.Sleep(interval)
	}
	time.Sleep(settle)
	if ids2, total2, err := relIDs(key, paths...); err == nil {
		return ids2, total2
	}
	return ids, total
}

// relReconcile compares what got 250 with what was exported: lost (250 but
// not exported), duplicates (exported more than once) and unexpected
// (exported without a 250, e.g. the reply was lost on the way back).
type relReconcile struct {
	Accepted, Exported, Lost, Duplicates, Unexpected int
	LostIDs, UnexpectedIDs                           []string
}

func relCompare(accepted []string, exported map[string]int, total int) relReconcile {
	r := relReconcile{Accepted: len(accepted), Exported: total}
	acc := map[string]bool{}
	for _, id := range accepted {
		acc[id] = true
		switch n := exported[id]; {
		case n == 0:
			r.Lost++
			r.LostIDs = append(r.LostIDs, id)
		case n > 1:
			r.Duplicates += n - 1
		}
	}
	for id, n := range exported {
		if !acc[id] {
			r.Unexpected += n
			r.UnexpectedIDs = append(r.UnexpectedIDs, id)
		}
	}
	sort.Strings(r.LostIDs)
	sort.Strings(r.UnexpectedIDs)
	return r
}

// relVerdict fails the test on any loss and on records exported without a
// 250 (unexpected says what such a record means in the scenario). Duplicates
// are the at-least-once price where a crash can cut a reply off (logged), and
// a failure where nothing can (duplicatesFail).
func relVerdict(t *testing.T, rc relReconcile, duplicatesFail bool, unexpected string) {
	t.Helper()
	if rc.Lost > 0 {
		t.Errorf("%d messages got 250 but never reached the output: %v", rc.Lost, relFirst(rc.LostIDs))
	}
	switch {
	case rc.Duplicates > 0 && duplicatesFail:
		t.Errorf("%d duplicate records", rc.Duplicates)
	case rc.Duplicates > 0:
		t.Logf("at-least-once: %d duplicate records", rc.Duplicates)
	}
	if rc.Unexpected > 0 {
		t.Errorf("%s: %v", unexpected, relFirst(rc.UnexpectedIDs))
	}
}

// relFirst cuts a list of ids for an error message.
func relFirst(ids []string) []string {
	if len(ids) > 10 {
		return append(ids[:10:10], fmt.Sprintf("... (%d more)", len(ids)-10))
	}
	return ids
}

// relReport prints one line per scenario (and logs it), in a fixed format
// that is easy to grep from the -v output: RELIABILITY <name>: ...
func relReport(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf("RELIABILITY %s: %s", t.Name(), fmt.Sprintf(format, args...))
	t.Log(line)
	relSummaryMu.Lock()
	relSummary = append(relSummary, line)
	relSummaryMu.Unlock()
}

var (
	relSummaryMu sync.Mutex
	relSummary   []string
)

// ---------------------------------------------------------------- SMTP client

// relClient is a minimal SMTP client on a raw connection: it can send the
// message in timed chunks, abort mid-DATA, and tells "no reply at all"
// (code 0) apart from a reply.
type relClient struct {
	raw  net.Conn
	conn net.Conn // raw, or the TLS connection after STARTTLS
	tp   *textproto.Conn
}

const relIOTimeout = 30 * time.Second

// relDial connects and reads the greeting. A greeting other than 220 is
// returned as code with a nil client.
func relDial(addr string) (*relClient, int, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	c := &relClient{raw: raw, conn: raw, tp: textproto.NewConn(raw)}
	_ = raw.SetDeadline(time.Now().Add(relIOTimeout))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil || code != 220 {
		raw.Close()
		if err == nil {
			err = fmt.Errorf("greeting %d %s", code, msg)
		}
		return nil, code, err
	}
	return c, code, nil
}

// cmd sends one command line and reads the reply (code 0: no reply).
func (c *relClient) cmd(format string, args ...any) (int, string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(relIOTimeout))
	id, err := c.tp.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	c.tp.StartResponse(id)
	defer c.tp.EndResponse(id)
	return c.tp.ReadResponse(0)
}

// hello sends EHLO, and with tlsCfg set STARTTLS and EHLO again.
func (c *relClient) hello(name string, tlsCfg *tls.Config) error {
	if code, msg, err := c.cmd("EHLO %s", name); err != nil || code != 250 {
		return fmt.Errorf("EHLO: %d %s %v", code, msg, err)
	}
	if tlsCfg == nil {
		return nil
	}
	if code, msg, err := c.cmd("STARTTLS"); err != nil || code != 220 {
		return fmt.Errorf("STARTTLS: %d %s %v", code, msg, err)
	}
	tc := tls.Client(c.raw, tlsCfg)
	_ = tc.SetDeadline(time.Now().Add(relIOTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.conn = tc
	c.tp = textproto.NewConn(tc)
	if code, msg, err := c.cmd("EHLO %s", name); err != nil || code != 250 {
		return fmt.Errorf("EHLO after STARTTLS: %d %s %v", code, msg, err)
	}
	return nil
}

// relSend describes how one message is transferred.
type relSend struct {
	From, To   string
	Msg        []byte
	Chunks     int           // split the content into this many writes (0/1: one write)
	ChunkDelay time.Duration // pause between writes
	AbortAfter int           // close the connection after this many chunks, before the final dot
	InData     func()        // called once DATA got its 354
}

// relOutcome is what happened to one message.
type relOutcome struct {
	Code  int    // final reply (0: none)
	Stage string // where it ended: mail, rcpt, data, content, dot
	Msg   string
	Err   error
	Took  time.Duration
}

// send runs MAIL, RCPT, DATA and the content; Code is the reply that decided
// the transaction.
func (c *relClient) send(s relSend) relOutcome {
	start := time.Now()
	o := func(code int, stage, msg string, err error) relOutcome {
		return relOutcome{Code: code, Stage: stage, Msg: msg, Err: err, Took: time.Since(start)}
	}
	if code, msg, err := c.cmd("MAIL FROM:<%s>", s.From); err != nil || code != 250 {
		return o(code, "mail", msg, err)
	}
	if code, msg, err := c.cmd("RCPT TO:<%s>", s.To); err != nil || code != 250 {
		return o(code, "rcpt", msg, err)
	}
	if code, msg, err := c.cmd("DATA"); err != nil || code != 354 {
		return o(code, "data", msg, err)
	}
	if s.InData != nil {
		s.InData()
	}
	chunks := s.Chunks
	if chunks < 1 {
		chunks = 1
	}
	size := (len(s.Msg) + chunks - 1) / chunks
	for i := 0; i < chunks; i++ {
		if s.AbortAfter > 0 && i == s.AbortAfter {
			c.raw.Close()
			return o(0, "content", "aborted by the client", nil)
		}
		lo, hi := i*size, (i+1)*size
		if lo > len(s.Msg) {
			lo = len(s.Msg)
		}
		if hi > len(s.Msg) {
			hi = len(s.Msg)
		}
		_ = c.conn.SetDeadline(time.Now().Add(relIOTimeout))
		if _, err := c.conn.Write(s.Msg[lo:hi]); err != nil {
			return o(0, "content", "", err)
		}
		if i+1 < chunks && s.ChunkDelay > 0 {
			time.Sleep(s.ChunkDelay)
		}
	}
	_ = c.conn.SetDeadline(time.Now().Add(relIOTimeout))
	if _, err := c.conn.Write([]byte(".\r\n")); err != nil {
		return o(0, "dot", "", err)
	}
	code, msg, err := c.tp.ReadResponse(0)
	return o(code, "dot", msg, err)
}

// next reads one more reply without sending anything (an unsolicited 421),
// or reports the close; bounded by wait.
func (c *relClient) next(wait time.Duration) (int, string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(wait))
	return c.tp.ReadResponse(0)
}

func (c *relClient) quit() {
	_, _, _ = c.cmd("QUIT")
	c.conn.Close()
}

func (c *relClient) close() { c.conn.Close() }

// relMessage builds an RFC 5322 message (CRLF, no line starting with a dot)
// with subject and Message-ID derived from id and a body of about bodyBytes.
func relMessage(id string, bodyBytes int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Reliability <rel@example.com>\r\n")
	fmt.Fprintf(&b, "To: ops@example.org\r\n")
	fmt.Fprintf(&b, "Subject: %s\r\n", id)
	fmt.Fprintf(&b, "Message-ID: <%s@reliability.example.com>\r\n", id)
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	line := "reliability payload 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQR\r\n"
	for n := 0; n < bodyBytes; n += len(line) {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// relMalformed is a multipart message whose final boundary is missing and
// whose base64 part is broken: the receiver must still take it (250) and
// record the parse problem.
func relMalformed(id string) []byte {
	return []byte(strings.Join([]string{
		"From: rel@example.com",
		"To: ops@example.org",
		"Subject: " + id,
		"Message-ID: <" + id + "@reliability.example.com>",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="b1"`,
		"",
		"--b1",
		"Content-Type: text/plain",
		"",
		"first part",
		"--b1",
		"Content-Type: application/octet-stream",
		"Content-Transfer-Encoding: base64",
		"",
		"!!!not base64 at all###",
		"--b1",
		"Content-Type: text/html; charset=x-unknown-charset",
		"Content-Transfer-Encoding: x-bogus",
		"",
		"<p>no closing boundary",
		"",
	}, "\r\n"))
}

// relSendOne dials, says EHLO and sends one message.
func relSendOne(addr string, tlsCfg *tls.Config, s relSend) relOutcome {
	start := time.Now()
	c, code, err := relDial(addr)
	if err != nil {
		return relOutcome{Code: code, Stage: "connect", Err: err, Took: time.Since(start)}
	}
	if err := c.hello("reliability.example.com", tlsCfg); err != nil {
		c.close()
		return relOutcome{Stage: "ehlo", Err: err, Took: time.Since(start)}
	}
	o := c.send(s)
	if o.Stage == "content" && o.Code == 0 && o.Err == nil {
		return o // aborted on purpose, connection already closed
	}
	c.quit()
	o.Took = time.Since(start)
	return o
}

// ---------------------------------------------------------------- RSS

// relRSS returns VmRSS of a process in KiB.
func relRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) >= 1 {
				return strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}

// ---------------------------------------------------------------- Postfix

// relPostfix is a throwaway Postfix instance: its own config, queue and
// data directories under one temporary directory, smtpd on a loopback high
// port, everything relayed to relayPort.
type relPostfix struct {
	t       *testing.T
	dir     string
	confDir string
	port    int
	started bool
}

// relPostfixBin finds a Postfix program (PATH, then /usr/sbin).
func relPostfixBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/lib/postfix/sbin", "/usr/libexec/postfix"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// relPostfixUnavailable says why a throwaway Postfix cannot run here, or "".
func relPostfixUnavailable() string {
	for _, p := range []string{"postfix", "postconf", "postqueue", "smtp-source"} {
		if relPostfixBin(p) == "" {
			return p + " not installed (run `bash scripts/e2e-deps.sh` as root)"
		}
	}
	if os.Geteuid() != 0 {
		return "the Postfix master must start as root (it binds its own smtpd and switches to mail_owner postfix); this test runs as uid " + strconv.Itoa(os.Geteuid())
	}
	if _, err := exec.Command("id", "postfix").Output(); err != nil {
		return "no postfix user (mail_owner) on this machine"
	}
	return ""
}

func (p *relPostfix) run(name string, args ...string) (string, error) {
	cmd := exec.Command(relPostfixBin(name), args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("%s %v: killed after 60s", name, args)
	}
	return string(out), err
}

// relNewPostfix creates and starts the instance; t.Cleanup stops it and
// removes its directory, also when the test fails.
func relNewPostfix(t *testing.T, relayPort int) *relPostfix {
	t.Helper()
	if why := relPostfixUnavailable(); why != "" {
		t.Skipf("Postfix cannot run here: %s", why)
	}
	// Not t.TempDir(): that is mode 0700 below a 0700 parent, and Postfix's
	// daemons run as mail_owner and must reach their queue.
	dir, err := os.MkdirTemp("", "otelcol-reliability-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &relPostfix{t: t, dir: dir, confDir: filepath.Join(dir, "etc"), port: freePort(t)}
	t.Cleanup(p.cleanup)
	for _, d := range []string{"etc", "queue", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// data_directory must belong to mail_owner (master.lock, caches).
	if out, err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix %s/data: %v %s", dir, err, out)
	}
	master := "/etc/postfix/master.cf"
	if _, err := os.Stat(master); err != nil {
		master = "/usr/share/postfix/master.cf.dist"
	}
	data, err := os.ReadFile(master)
	if err != nil {
		t.Fatalf("no master.cf template: %v", err)
	}
	writeFile(t, filepath.Join(p.confDir, "master.cf"), string(data))
	writeFile(t, filepath.Join(p.confDir, "main.cf"), "# throwaway instance of the reliability suite\n")

	params := []string{
		"compatibility_level=3.6",
		"queue_directory=" + filepath.Join(dir, "queue"),
		"data_directory=" + filepath.Join(dir, "data"),
		"mail_owner=postfix",
		"myhostname=pf-reliability.localdomain",
		"mydomain=localdomain",
		"inet_interfaces=loopback-only",
		"inet_protocols=ipv4",
		"mynetworks=127.0.0.0/8",
		"mydestination=",
		"relay_domains=",
		"local_recipient_maps=",
		"alias_maps=",
		"alias_database=",
		fmt.Sprintf("relayhost=[127.0.0.1]:%d", relayPort),
		"smtp_dns_support_level=disabled",
		"smtpd_peername_lookup=no",
		"smtp_tls_security_level=none",
		"smtpd_tls_security_level=none",
		"smtputf8_enable=no",
		"biff=no",
		"append_dot_mydomain=no",
		// Short retry schedule: a deferred message is tried again about every 5 s.
		"queue_run_delay=5s",
		"minimal_backoff_time=5s",
		"maximal_backoff_time=10s",
		"smtp_connect_timeout=2s",
		"smtp_data_done_timeout=30s",
		"default_destination_concurrency_limit=8",
		// Logs into the instance directory (no syslog in containers).
		"maillog_file_prefixes=" + dir,
		"maillog_file=" + filepath.Join(dir, "maillog"),
	}
	if out, err := p.run("postconf", append([]string{"-c", p.confDir, "-e"}, params...)...); err != nil {
		t.Fatalf("postconf -e: %v\n%s", err, out)
	}
	// No chroot (it would need a populated jail), and smtpd on our port only.
	steps := [][]string{
		{"-c", p.confDir, "-F", "*/*/chroot = n"},
		{"-c", p.confDir, "-MX", "smtp/inet"},
		{"-c", p.confDir, "-M", fmt.Sprintf("127.0.0.1:%d/inet=127.0.0.1:%d inet n - n - - smtpd", p.port, p.port)},
	}
	for _, s := range steps {
		if out, err := p.run("postconf", s...); err != nil {
			t.Fatalf("postconf %v: %v\n%s", s, err, out)
		}
	}
	if out, err := p.run("postfix", "-c", p.confDir, "check"); err != nil {
		t.Fatalf("postfix -c %s check: %v\n%s\n--- maillog\n%s", p.confDir, err, out, p.maillog())
	}
	if out, err := p.run("postfix", "-c", p.confDir, "start"); err != nil {
		t.Fatalf("postfix -c %s start: %v\n%s\n--- maillog\n%s", p.confDir, err, out, p.maillog())
	}
	p.started = true
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", p.addr(), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix smtpd on %s not accepting after 20s\n--- maillog\n%s", p.addr(), p.maillog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return p
}

func (p *relPostfix) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

func (p *relPostfix) maillog() string {
	data, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	const max = 32 << 10
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

// maillogAll returns the whole maillog of the instance.
func (p *relPostfix) maillogAll() string {
	data, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(data)
}

// messageIDs reads the message-ids Postfix's cleanup logged for the
// messages it accepted, waiting (bounded by limit) until there are n.
func (p *relPostfix) messageIDs(n int, limit time.Duration) []string {
	re := regexp.MustCompile(`postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=<([^>]*)>`)
	seen := map[string]bool{}
	var ids []string
	deadline := time.Now().Add(limit)
	for {
		for _, m := range re.FindAllStringSubmatch(p.maillogAll(), -1) {
			if !seen[m[2]] {
				seen[m[2]] = true
				ids = append(ids, m[2])
			}
		}
		if len(ids) >= n || time.Now().After(deadline) {
			return ids
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// queue returns `postqueue -p` and whether the queue is empty.
func (p *relPostfix) queue() (string, bool) {
	out, err := p.run("postqueue", "-c", p.confDir, "-p")
	return out, err == nil && strings.Contains(out, "Mail queue is empty")
}

// flush asks for an immediate delivery attempt of the deferred mail.
func (p *relPostfix) flush() {
	_, _ = p.run("postqueue", "-c", p.confDir, "-f")
}

// masterPID reads the pid file of the instance's master.
func (p *relPostfix) masterPID() int {
	data, err := os.ReadFile(filepath.Join(p.dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

func (p *relPostfix) cleanup() {
	if p.started {
		pid := p.masterPID()
		if out, err := p.run("postfix", "-c", p.confDir, "stop"); err != nil {
			p.t.Logf("postfix stop: %v %s", err, out)
		}
		// Bounded wait for this instance's master (and so its children) to go.
		for i := 0; pid > 0 && i < 100; i++ {
			if syscall.Kill(pid, 0) != nil {
				pid = 0
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if pid > 0 {
			p.t.Logf("Postfix master %d still running 10s after stop: SIGKILL", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if p.t.Failed() {
			p.t.Logf("--- Postfix maillog (%s)\n%s", p.dir, p.maillog())
		}
	}
	_ = os.RemoveAll(p.dir)
}
