//go:build e2e || reliability || scale

// Package e2e runs the built collector bin/otelcol-smtp against real SMTP
// clients (python smtplib, curl, swaks, Postfix smtp-source) and checks the
// records it exports. Run it with `make e2e`, or after `make build` with
//
//	go test -tags e2e -count=1 -v ./e2e/...
//
// Every collector runs as a subprocess on a free 127.0.0.1 port with a file
// exporter writing into the test's temporary directory; the tests read the
// exported OTLP JSON lines back with plog.JSONUnmarshaler.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Bounds of every wait in the suite.
const (
	startTimeout   = 30 * time.Second // collector: port accepting connections
	stopTimeout    = 15 * time.Second // SIGTERM -> exit, then SIGKILL
	recordTimeout  = 20 * time.Second // records appearing in the file exporter output
	settleDuration = 750 * time.Millisecond
	clientTimeout  = 90 * time.Second // one client process (python, curl, swaks, smtp-source)
	pollInterval   = 50 * time.Millisecond
)

var (
	repoRoot  string
	binary    string
	clientsPy string
)

func TestMain(m *testing.M) {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	repoRoot = root
	binary = filepath.Join(root, "bin", "otelcol-smtp")
	clientsPy = filepath.Join(root, "e2e", "clients", "smtp_client.py")
	if fi, err := os.Stat(binary); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		fmt.Fprintf(os.Stderr, "e2e: collector binary %s not found or not executable: run `make build` first (or `make e2e`, which builds it)\n", binary)
		os.Exit(1)
	}
	start := time.Now()
	code := m.Run()
	printSummary(time.Since(start))
	os.Exit(code)
}

// findRepoRoot walks up from the working directory to the go.mod of this
// module.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for i := 0; i < 20; i++ {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/smtpreceiver/smtpreceiver\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("cannot find the repository root (go.mod of github.com/smtpreceiver/smtpreceiver) above the working directory")
}

// ---------------------------------------------------------------- summary

// tally counts, per scenario, the messages a client tried to send, the
// replies by class and the records the exporter wrote.
type tally struct {
	Sent, OK, Temp, Perm, Exported int
}

var (
	summaryMu sync.Mutex
	summary   = map[string]*tally{}
	order     []string
)

func counts(t *testing.T) *tally {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	name := t.Name()
	if c, ok := summary[name]; ok {
		return c
	}
	c := &tally{}
	summary[name] = c
	order = append(order, name)
	return c
}

// reply records one attempted message and the class of its final reply
// (code 0: no SMTP reply, e.g. a client-side refusal).
func (c *tally) reply(code int) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	c.Sent++
	switch {
	case code >= 200 && code < 300:
		c.OK++
	case code >= 400 && code < 500:
		c.Temp++
	case code >= 500:
		c.Perm++
	}
}

func (c *tally) exported(n int) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	c.Exported = n
}

func printSummary(d time.Duration) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if len(order) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n==== e2e summary (%s) ====\n", d.Round(time.Millisecond))
	fmt.Fprintf(&b, "%-58s %5s %5s %5s %5s %8s\n", "scenario", "sent", "250", "4xx", "5xx", "exported")
	for _, name := range order {
		c := summary[name]
		fmt.Fprintf(&b, "%-58s %5d %5d %5d %5d %8d\n", name, c.Sent, c.OK, c.Temp, c.Perm, c.Exported)
	}
	fmt.Print(b.String())
}

// ---------------------------------------------------------------- tools

// need returns the path of an external tool or fails the test with the fix.
func need(t *testing.T, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s not found: run `bash scripts/e2e-deps.sh` (as root) to install the e2e clients", name)
	return ""
}

type cmdResult struct {
	Code     int // exit status; -1 when it did not exit normally
	Stdout   string
	Stderr   string
	Duration time.Duration
}

// run executes a client with a time bound and returns its output; it never
// fails the test itself.
func run(t *testing.T, env []string, name string, args ...string) cmdResult {
	t.Helper()
	return runIn(t, "", env, name, args...)
}

// runIn is run in the working directory dir ("" for the test's own).
func runIn(t *testing.T, dir string, env []string, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	res := cmdResult{Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		res.Code = 0
	case errors.As(err, &exitErr) && exitErr.Exited():
		res.Code = exitErr.ExitCode()
	default:
		res.Code = -1
		res.Stderr += "\n[e2e] " + err.Error()
	}
	if ctx.Err() != nil {
		res.Stderr += fmt.Sprintf("\n[e2e] killed after %s", clientTimeout)
	}
	return res
}

func (r cmdResult) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout\n%s\n--- stderr\n%s", r.Code, r.Duration.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// pyResult is what e2e/clients/smtp_client.py prints.
type pyResult struct {
	Result    string `json:"result"`
	Exception string `json:"exception"`
	Stage     string `json:"stage"`
	Code      int    `json:"code"`
	Message   string `json:"message"`
	Raw       string `json:"raw"`
	AuthCode  int    `json:"auth_code"`
}

// python runs the smtplib client and decodes its JSON result.
func python(t *testing.T, args ...string) pyResult {
	t.Helper()
	py := need(t, "python3")
	res := run(t, nil, py, append([]string{clientsPy}, args...)...)
	if res.Code != 0 {
		t.Fatalf("python client failed: %s", res)
	}
	var out pyResult
	line := strings.TrimSpace(res.Stdout)
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), &out); err != nil {
		t.Fatalf("python client printed no JSON result (%v): %s", err, res)
	}
	return out
}

// ---------------------------------------------------------------- collector

// collector is one otelcol-smtp subprocess.
type collector struct {
	t       *testing.T
	dir     string // working directory (a t.TempDir)
	port    int
	out     string // file exporter output
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// freePort asks the kernel for a free 127.0.0.1 TCP port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// configFunc writes the collector's config files for a port into dir and
// returns their paths (in --config order).
type configFunc func(t *testing.T, dir string, port int, out string) []string

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileExporter is the exporter block every scenario config uses: rotation
// set makes the contrib file exporter write each export straight away.
func fileExporter(out string) string { return fileExporterRotatingAt(out, 10) }

// fileExporterRotatingAt is fileExporter with the rotation size in MiB.
func fileExporterRotatingAt(out string, megabytes int) string {
	return fmt.Sprintf(`  file:
    path: %q
    format: json
    rotation:
      max_megabytes: %d
`, out, megabytes)
}

// quietTelemetry keeps the collector's own metrics endpoint (:8888) off, so
// collectors can run next to each other.
const quietTelemetry = `  telemetry:
    metrics:
      level: none
`

// simpleConfig is one smtp receiver (YAML properties indented for the
// receiver block, without address/port) feeding the file exporter.
func simpleConfig(name, props string) configFunc {
	return func(t *testing.T, dir string, port int, out string) []string {
		cfg := fmt.Sprintf(`receivers:
  smtp/%[1]s:
    address: 127.0.0.1
    port: %[2]d
%[3]s
exporters:
%[4]s
service:
%[5]s  pipelines:
    logs/%[1]s:
      receivers: [smtp/%[1]s]
      exporters: [file]
`, name, port, indent(props, "    "), fileExporter(out), quietTelemetry)
		return []string{writeFile(t, filepath.Join(dir, "config.yaml"), cfg)}
	}
}

func indent(s, prefix string) string {
	s = strings.Trim(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// startCollector writes the config, starts the collector and waits until its
// SMTP port accepts connections. A port taken between freePort and the
// collector's bind is retried with another port (bounded).
func startCollector(t *testing.T, cfg configFunc, env ...string) *collector {
	t.Helper()
	var lastLog string
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := tryStart(t, cfg, env)
		if err == nil {
			return c
		}
		lastLog = c.logTail()
		if !strings.Contains(lastLog, "address already in use") {
			// The cleanup of c prints the collector's output.
			t.Fatalf("collector did not start: %v", err)
		}
		t.Logf("port %d taken, retrying (%d/3)", c.port, attempt)
	}
	t.Fatalf("collector did not start after 3 attempts (ports taken)\n--- collector output\n%s", lastLog)
	return nil
}

func tryStart(t *testing.T, cfg configFunc, env []string) (*collector, error) {
	dir := t.TempDir()
	c := &collector{
		t:       t,
		dir:     dir,
		port:    freePort(t),
		out:     filepath.Join(dir, "records.jsonl"),
		logPath: filepath.Join(dir, "collector.log"),
		exited:  make(chan struct{}),
	}
	if err := c.launch(cfg(t, dir, c.port, c.out), env); err != nil {
		return c, err
	}
	return c, nil
}

// launch starts the collector with the config files and waits (bounded)
// until its SMTP port accepts connections; on a timeout it stops it again.
func (c *collector) launch(files, env []string) error {
	t := c.t
	args := []string{}
	for _, f := range files {
		if strings.HasPrefix(f, "--") { // a flag, such as --feature-gates
			args = append(args, f)
			continue
		}
		args = append(args, "--config", f)
	}
	logf, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(binary, args...)
	c.cmd.Dir = c.dir
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout = logf
	c.cmd.Stderr = logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", binary, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	t.Cleanup(c.stop)

	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("collector exited during start: %v", c.waitErr)
		default:
		}
		conn, err := net.DialTimeout("tcp", c.addr(), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop()
	return fmt.Errorf("port %d not accepting connections after %s", c.port, startTimeout)
}

func (c *collector) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

// stop sends SIGTERM, waits (bounded), then SIGKILLs. It prints the
// collector's output when the test failed. Safe to call twice.
func (c *collector) stop() {
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
			// A clean shutdown on SIGTERM exits 0.
			if c.waitErr != nil {
				c.t.Errorf("collector exited with %v after SIGTERM", c.waitErr)
			}
		case <-time.After(stopTimeout):
			c.t.Errorf("collector did not exit within %s after SIGTERM: SIGKILL", stopTimeout)
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-c.exited:
			case <-time.After(5 * time.Second):
			}
		}
	}
	if c.t.Failed() {
		c.t.Logf("--- collector output (%s)\n%s", c.logPath, c.logTail())
	}
}

// logTail returns the collector's output, cut to its last 64 KiB.
func (c *collector) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const maxLog = 64 << 10
	if len(data) > maxLog {
		data = append([]byte("...(cut)...\n"), data[len(data)-maxLog:]...)
	}
	return string(data)
}

func (c *collector) log() string {
	data, _ := os.ReadFile(c.logPath)
	return string(data)
}

// ---------------------------------------------------------------- records

// record is one exported log record with its resource attributes.
type record struct {
	Resource pcommon.Map
	Attrs    pcommon.Map
	Body     pcommon.Map // the body map (empty when the body is not a map)
	LR       plog.LogRecord
	Scope    pcommon.InstrumentationScope
}

// readRecords parses the file exporter's output: one OTLP JSON document per
// line. A last line without its newline is still being written and skipped.
func readRecords(path string) ([]record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		return nil, nil
	}
	var out []record
	var um plog.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		logs, err := um.UnmarshalLogs(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rls := logs.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			rl := rls.At(i)
			sls := rl.ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					r := record{Resource: rl.Resource().Attributes(), Attrs: lr.Attributes(), LR: lr, Scope: sls.At(j).Scope()}
					if lr.Body().Type() == pcommon.ValueTypeMap {
						r.Body = lr.Body().Map()
					} else {
						r.Body = pcommon.NewMap()
					}
					out = append(out, r)
				}
			}
		}
	}
	return out, sc.Err()
}

// waitRecords polls the exporter output until at least n records are there
// (bounded by recordTimeout) and returns all of them.
func (c *collector) waitRecords(n int) []record {
	c.t.Helper()
	deadline := time.Now().Add(recordTimeout)
	var recs []record
	var err error
	for {
		recs, err = readRecords(c.out)
		if err == nil && len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-c.exited:
			c.t.Fatalf("collector exited while waiting for %d records (have %d): %v", n, len(recs), c.waitErr)
		case <-time.After(pollInterval):
		}
	}
	if err != nil {
		c.t.Fatalf("reading %s: %v", c.out, err)
	}
	c.t.Fatalf("waited %s for %d records in %s, have %d", recordTimeout, n, c.out, len(recs))
	return nil
}

// waitExactly waits for n records, then for a short settle time, and checks
// that no more arrived.
func (c *collector) waitExactly(n int) []record {
	c.t.Helper()
	recs := c.waitRecords(n)
	if len(recs) == n {
		time.Sleep(settleDuration)
		var err error
		recs, err = readRecords(c.out)
		if err != nil {
			c.t.Fatalf("reading %s: %v", c.out, err)
		}
	}
	if len(recs) != n {
		c.t.Errorf("want exactly %d records, got %d", n, len(recs))
	}
	return recs
}

// settledRecords waits settleDuration and returns whatever is exported.
func (c *collector) settledRecords() []record {
	c.t.Helper()
	time.Sleep(settleDuration)
	recs, err := readRecords(c.out)
	if err != nil {
		c.t.Fatalf("reading %s: %v", c.out, err)
	}
	return recs
}

// waitSubject polls until a record with the email.subject attribute subject
// is exported (bounded) and returns it.
func (c *collector) waitSubject(subject string) record {
	c.t.Helper()
	deadline := time.Now().Add(recordTimeout)
	for {
		recs, err := readRecords(c.out)
		if err == nil {
			for _, r := range recs {
				if str(r.Attrs, "email.subject") == subject {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waited %s for a record with subject %q; %d records exported (read error: %v)", recordTimeout, subject, len(recs), err)
		}
		select {
		case <-c.exited:
			c.t.Fatalf("collector exited while waiting for the record %q: %v", subject, c.waitErr)
		case <-time.After(pollInterval):
		}
	}
}

// countSubject counts the exported records with the given subject.
func countSubject(recs []record, subject string) int {
	n := 0
	for _, r := range recs {
		if str(r.Attrs, "email.subject") == subject {
			n++
		}
	}
	return n
}

// findRecord returns the record whose email.subject attribute is subject.
func findRecord(t *testing.T, recs []record, subject string) record {
	t.Helper()
	for _, r := range recs {
		if str(r.Attrs, "email.subject") == subject {
			return r
		}
	}
	var subjects []string
	for _, r := range recs {
		subjects = append(subjects, str(r.Attrs, "email.subject"))
	}
	t.Fatalf("no record with subject %q among %d records (subjects %q)", subject, len(recs), subjects)
	return record{}
}

// ---------------------------------------------------------------- pdata access

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

func has(m pcommon.Map, key string) bool {
	_, ok := m.Get(key)
	return ok
}

func integer(m pcommon.Map, key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeInt {
		return 0, false
	}
	return v.Int(), true
}

// strs returns a slice value as strings (a single string as a one-element
// list).
func strs(m pcommon.Map, key string) []string {
	v, ok := m.Get(key)
	if !ok {
		return nil
	}
	if v.Type() != pcommon.ValueTypeSlice {
		return []string{v.AsString()}
	}
	var out []string
	for i := 0; i < v.Slice().Len(); i++ {
		out = append(out, v.Slice().At(i).AsString())
	}
	return out
}

func submap(m pcommon.Map, key string) (pcommon.Map, bool) {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeMap {
		return pcommon.NewMap(), false
	}
	return v.Map(), true
}

func sliceOfMaps(m pcommon.Map, key string) []pcommon.Map {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	var out []pcommon.Map
	for i := 0; i < v.Slice().Len(); i++ {
		if e := v.Slice().At(i); e.Type() == pcommon.ValueTypeMap {
			out = append(out, e.Map())
		}
	}
	return out
}

func sortedKeys(m pcommon.Map) []string {
	var keys []string
	m.Range(func(k string, _ pcommon.Value) bool {
		keys = append(keys, k)
		return true
	})
	sort.Strings(keys)
	return keys
}

// ---------------------------------------------------------------- TLS material

type tlsFiles struct {
	Dir, CA, Cert, Key string // Cert and Key are named server.crt / server.key in Dir
}

// makeCerts writes a throwaway CA and a server certificate for 127.0.0.1 and
// localhost (ECDSA P-256, PEM) into dir.
func makeCerts(t *testing.T, dir string) tlsFiles {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtp e2e test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	f := tlsFiles{
		Dir:  dir,
		CA:   filepath.Join(dir, "ca.crt"),
		Cert: filepath.Join(dir, "server.crt"),
		Key:  filepath.Join(dir, "server.key"),
	}
	writeFile(t, f.CA, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, f.Cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})))
	writeFile(t, f.Key, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return f
}
