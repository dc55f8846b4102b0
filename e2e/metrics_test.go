//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The receiver's health is visible the way collector users look at it: its
// self-metrics scraped from the collector's Prometheus endpoint, and one
// "SMTP stats" log line per worker every stats_frequency.
func TestSelfMetricsScrape(t *testing.T) {
	metricsPort := freePort(t)
	c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
		return []string{writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`receivers:
  smtp/e2e_metrics:
    address: 127.0.0.1
    port: %d
    reuse: true
    workers: 2
    stats_frequency: 1
exporters:
%s
service:
%s
  pipelines:
    logs:
      receivers: [smtp/e2e_metrics]
      exporters: [file]
`, port, fileExporter(out), prometheusTelemetry(metricsPort)))}
	})
	tl := counts(t)
	const sent = 3
	for i := range sent {
		res := python(t, "--port", strconv.Itoa(c.port), "--mail-from", "m@example.com",
			"--rcpt", "ops@example.org", "--subject", fmt.Sprintf("metrics %d", i))
		tl.reply(res.Code)
		if res.Result != "ok" {
			t.Fatalf("send: %+v", res)
		}
	}
	tl.exported(len(c.waitExactly(sent)))

	// Counters are per worker: add the series up.
	accepted := regexp.MustCompile(`(?m)^otelcol_smtp_messages_accepted\{[^}]*\} (\d+)`)
	var body string
	deadline := time.Now().Add(20 * time.Second)
	total := 0
	for time.Now().Before(deadline) {
		body = scrape(t, metricsPort)
		total = 0
		for _, m := range accepted.FindAllStringSubmatch(body, -1) {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
		if total == sent {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	eq(t, "otelcol_smtp_messages_accepted summed over workers", total, sent)
	for _, name := range []string{
		"otelcol_smtp_sessions_opened", "otelcol_smtp_message_bytes_received",
		"otelcol_smtp_recipients_accepted", "otelcol_smtp_consume_duration_bucket",
		"otelcol_receiver_accepted_log_records",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("metric %s missing from the scrape", name)
		}
	}
	if !strings.Contains(body, `worker="0"`) {
		t.Errorf("no worker label in the scrape")
	}

	// The stats report: one line per worker (workers are capped at the
	// CPU count), every second here.
	workers := min(2, runtime.NumCPU())
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && strings.Count(c.log(), "SMTP stats") < workers {
		time.Sleep(200 * time.Millisecond)
	}
	log := c.log()
	for w := range workers {
		if !regexp.MustCompile(`SMTP stats.*"worker": ` + strconv.Itoa(w) + `\b`).MatchString(log) {
			t.Errorf("no SMTP stats line for worker %d in the collector log", w)
		}
	}
}

// prometheusTelemetry is the service.telemetry block of a collector that
// serves its metrics on 127.0.0.1:port, keeping the scope labels as
// examples/metrics.yaml does.
func prometheusTelemetry(port int) string {
	return fmt.Sprintf(`  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
                without_scope_info: false`, port)
}

func scrape(t *testing.T, port int) string {
	t.Helper()
	_, body := scrapeStatus(t, port)
	return body
}

// Issue 10.5: two receivers in one collector, one mail each: every smtp_*
// series names its receiver, and /metrics answers 200 with and without the
// collector's telemetry.newPipelineTelemetry feature gate (which used to
// make the two receivers' series collide: HTTP 500). The reader keeps the
// scope labels, as examples/metrics.yaml does: under the gate the
// collector's own per-receiver series differ only in them.
func TestSelfMetricsPerReceiver(t *testing.T) {
	for _, gate := range []string{"", "--feature-gates=telemetry.newPipelineTelemetry"} {
		t.Run("gate="+gate, func(t *testing.T) {
			metricsPort, betaPort := freePort(t), freePort(t)
			c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
				files := []string{writeFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`receivers:
  smtp/alpha:
    address: 127.0.0.1
    port: %d
  smtp/beta:
    address: 127.0.0.1
    port: %d
exporters:
%s
service:
%s
  pipelines:
    logs:
      receivers: [smtp/alpha, smtp/beta]
      exporters: [file]
`, port, betaPort, fileExporter(out), prometheusTelemetry(metricsPort)))}
				if gate != "" {
					files = append(files, gate)
				}
				return files
			})
			for _, p := range []int{c.port, betaPort} {
				res := python(t, "--port", strconv.Itoa(p), "--mail-from", "m@example.com",
					"--rcpt", "ops@example.org", "--subject", "per receiver")
				if res.Result != "ok" {
					t.Fatalf("send to port %d: %+v", p, res)
				}
			}
			c.waitExactly(2)

			series := regexp.MustCompile(`(?m)^otelcol_smtp_messages_accepted\{([^}]*)\} (\d+)`)
			want := map[string]bool{`receiver="smtp/alpha"`: false, `receiver="smtp/beta"`: false}
			var status int
			var body string
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				status, body = scrapeStatus(t, metricsPort)
				for _, m := range series.FindAllStringSubmatch(body, -1) {
					for label := range want {
						if strings.Contains(m[1], label) && m[2] == "1" {
							want[label] = true
						}
					}
				}
				if status == http.StatusOK && want[`receiver="smtp/alpha"`] && want[`receiver="smtp/beta"`] {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			eq(t, "/metrics status", status, http.StatusOK)
			for label, seen := range want {
				if !seen {
					t.Errorf("no otelcol_smtp_messages_accepted{%s} 1 in the scrape:\n%s", label, grepLines(body, "otelcol_smtp_messages_accepted"))
				}
			}
		})
	}
}

func scrapeStatus(t *testing.T, port int) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
