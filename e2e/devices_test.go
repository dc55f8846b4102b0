//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The migration path of a device user, end to end: the spec's five examples
// in one device file → bin/device2otel → the collector started with its
// output → mail to each device's port lands in that device's pipeline, with
// the stand-in processors applied.
func TestDeviceFileConversion(t *testing.T) {
	converter := filepath.Join(repoRoot, "bin", "device2otel")
	if _, err := os.Stat(converter); err != nil {
		t.Fatalf("%s missing: run `make build`", converter)
	}
	res := run(t, nil, converter, filepath.Join(repoRoot, "examples", "devices.yaml"))
	if res.Code != 0 {
		t.Fatalf("device2otel: %s", res)
	}
	converted := res.Stdout

	devices := []string{"basic_smtp", "secure_smtp", "performant_smtp", "submission_smtp", "pipeline_smtp"}
	ports := map[string]int{}
	var certs tlsFiles
	c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
		// The TLS devices find smtp.crt and smtp.key in the service root,
		// the collector's working directory.
		certs = makeCerts(t, dir)
		for from, to := range map[string]string{certs.Cert: "smtp.crt", certs.Key: "smtp.key"} {
			data, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, to), string(data))
		}
		// The converter's output unchanged, plus an override that moves
		// the devices to free ports and exports to a file.
		var b strings.Builder
		b.WriteString("receivers:\n")
		for i, d := range devices {
			p := port
			if i > 0 {
				p = freePort(t)
			}
			ports[d] = p
			fmt.Fprintf(&b, "  smtp/%s:\n    port: %d\n", d, p)
		}
		b.WriteString("exporters:\n" + fileExporter(out) + "service:\n" + quietTelemetry + "  pipelines:\n")
		for _, d := range devices {
			fmt.Fprintf(&b, "    logs/%s:\n      exporters: [file]\n", d)
		}
		return []string{
			writeFile(t, filepath.Join(dir, "collector.yaml"), converted),
			writeFile(t, filepath.Join(dir, "override.yaml"), b.String()),
		}
	}, "SMTP_PASSWORD="+authPassword)
	for _, d := range devices[1:] {
		waitListening(t, ports[d])
	}

	tl := counts(t)
	send := func(device, subject string, extra ...string) {
		t.Helper()
		args := append([]string{"--port", strconv.Itoa(ports[device]), "--mail-from", "ivy@example.com",
			"--rcpt", "ops@example.org", "--subject", subject}, extra...)
		r := python(t, args...)
		tl.reply(r.Code)
		if r.Result != "ok" {
			t.Fatalf("%s: sending %q: %+v", device, subject, r)
		}
	}
	login := []string{"--mode", "starttls", "--cafile", certs.CA, "--user", authUser, "--password", authPassword}
	send("pipeline_smtp", "device spam", "--header", "X-Spam-Flag: YES")
	send("basic_smtp", "device basic")
	send("secure_smtp", "device secure", login...)
	send("performant_smtp", "device performant")
	send("submission_smtp", "device submission", login...)
	send("pipeline_smtp", "device ham", "--header-from", "Ivy <ivy@Mail.Example.com>")

	want := map[string]string{
		"device basic":      "basic_smtp",
		"device secure":     "secure_smtp",
		"device performant": "performant_smtp",
		"device submission": "submission_smtp",
		"device ham":        "pipeline_smtp",
	}
	for subject, device := range want {
		r := c.waitSubject(subject)
		eq(t, subject+": device.name", str(r.Resource, "device.name"), device)
	}
	recs := c.settledRecords()
	tl.exported(len(recs))
	eq(t, "records exported (the spam is dropped)", len(recs), len(want))
	eq(t, "spam records", countSubject(recs, "device spam"), 0)
	ham := findRecord(t, recs, "device ham")
	eq(t, "email_parser ran: email.from.domain", str(ham.Attrs, "email.from.domain"), "mail.example.com")
	for _, s := range []string{"device secure", "device submission"} {
		eq(t, s+": user.name", str(findRecord(t, recs, s).Attrs, "user.name"), authUser)
	}
}

// waitListening waits (bounded) until a port accepts connections.
func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("port %d not listening after %s", port, startTimeout)
}
