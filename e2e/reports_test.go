//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/reports"
	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

// mailreplayBinary is built by `make build` next to the collector.
func mailreplayBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot, "bin", "mailreplay")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found: run `make build` (or `make e2e`)", bin)
	}
	return bin
}

// fixtureMbox writes the generated reports as one mbox.
func fixtureMbox(t *testing.T, dir string) (string, []reportgen.Fixture) {
	t.Helper()
	fixtures := reportgen.Fixtures()
	var b strings.Builder
	for _, f := range fixtures {
		b.WriteString("From reports@example.net Mon Nov  2 01:02:03 2026\n")
		for _, line := range strings.SplitAfter(string(f.Message), "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				b.WriteString(">")
			}
			b.WriteString(line)
		}
		b.WriteString("\n")
	}
	return writeFile(t, filepath.Join(dir, "reports.mbox"), b.String()), fixtures
}

// replayAll runs mailreplay and requires all n messages sent.
func replayAll(t *testing.T, tl *tally, replay string, n int, args ...string) {
	t.Helper()
	res := run(t, nil, replay, args...)
	want := fmt.Sprintf("%d messages: %d sent, 0 refused, 0 failed", n, n)
	if res.Code != 0 || !strings.Contains(res.Stdout, want) {
		t.Fatalf("mailreplay: %s", res)
	}
	for i := 0; i < n; i++ {
		tl.reply(250)
	}
}

// extractRows is what internal/reports makes of msg with the defaults.
func extractRows(msg []byte, email reports.Email) (plog.LogRecordSlice, reports.Result) {
	rows := plog.NewLogRecordSlice()
	res := reports.Extract(context.Background(), msg, email, reports.Options{}, rows)
	return rows, res
}

// TestMailreplayReports replays an mbox of every generated report into the
// built collector and compares each exported record, field by field, with
// what internal/reports makes of the same message: one email record, then
// its rows, in one export per email. A second run with the resume file
// sends nothing.
func TestMailreplayReports(t *testing.T) {
	replay := mailreplayBinary(t)
	tl := counts(t)
	c := startCollector(t, simpleConfig("reports", "reports:\n  enabled: true\n  keep_email_record: true"))
	mbox, fixtures := fixtureMbox(t, t.TempDir())
	resume := filepath.Join(c.dir, "replay.done")
	args := []string{"-server", c.addr(), "-to", "dmarc@example.org", "-quiet", "-resume", resume, mbox}

	replayAll(t, tl, replay, len(fixtures), args...)

	total := 0
	for _, f := range fixtures {
		rows, _ := extractRows(f.Message, reports.Email{})
		total += 1 + rows.Len()
	}
	recs := c.waitExactly(total)
	tl.exported(len(recs))

	next := 0
	for _, f := range fixtures {
		// The rows' email fields come from the exported email record;
		// everything else must match the package's own output.
		email := recs[next]
		next++
		if email.LR.EventName() != "" || str(email.Attrs, "smtp.mail_from") != "reports@example.net" {
			t.Fatalf("%s: record %d is not the email record: %q", f.Name, next-1, email.LR.EventName())
		}
		info := reports.Email{
			ClientAddress: str(email.Attrs, "client.address"),
			MailFrom:      str(email.Attrs, "smtp.mail_from"),
			MessageID:     str(email.Attrs, "email.message_id"),
			ReceivedAt:    email.LR.ObservedTimestamp().AsTime(),
		}
		rows, result := extractRows(f.Message, info)
		eq(t, f.Name+" email.report.type", str(email.Attrs, "email.report.type"), result.Type)
		if n, _ := integer(email.Attrs, "email.report.rows"); int(n) != rows.Len() {
			t.Errorf("%s: email.report.rows %d, want %d", f.Name, n, rows.Len())
		}
		eq(t, f.Name+" email.report.error", str(email.Attrs, "email.report.error"), strings.Join(result.Errors, "; "))
		for j := 0; j < rows.Len(); j++ {
			got, w := recs[next], rows.At(j)
			next++
			what := f.Name + " row " + strconv.Itoa(j)
			eq(t, what+" EventName", got.LR.EventName(), w.EventName())
			eq(t, what+" severity", got.LR.SeverityText(), w.SeverityText())
			eq(t, what+" severity number", got.LR.SeverityNumber(), w.SeverityNumber())
			eq(t, what+" Timestamp", got.LR.Timestamp(), w.Timestamp())
			eq(t, what+" ObservedTimestamp", got.LR.ObservedTimestamp(), email.LR.ObservedTimestamp())
			if !reflect.DeepEqual(got.Attrs.AsRaw(), w.Attributes().AsRaw()) {
				t.Errorf("%s attributes:\n got %v\nwant %v", what, got.Attrs.AsRaw(), w.Attributes().AsRaw())
			}
			if !reflect.DeepEqual(got.LR.Body().AsRaw(), w.Body().AsRaw()) {
				t.Errorf("%s body:\n got %v\nwant %v", what, got.LR.Body().AsRaw(), w.Body().AsRaw())
			}
			eq(t, what+" client.address", str(got.Attrs, "client.address"), "127.0.0.1")
		}
	}
	checkReportRowsByHand(t, recs)

	res := run(t, nil, replay, args...)
	if res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf("0 sent, 0 refused, 0 failed, %d skipped", len(fixtures))) {
		t.Fatalf("second mailreplay run: %s", res)
	}
	c.waitExactly(total)
}

// checkReportRowsByHand checks fields of one row of each kind against the
// generator's input, independently of internal/reports.
func checkReportRowsByHand(t *testing.T, recs []record) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range recs {
		a := r.Attrs
		switch ev := r.LR.EventName(); {
		case ev == "dmarc.aggregate.record" && str(a, "dmarc.report.id") == "agg-rfc9990-0001" && str(a, "source.address") == "198.51.100.23":
			seen[ev] = true
			n, _ := integer(a, "dmarc.count")
			eq(t, "dmarc.count", n, int64(3))
			eq(t, "dmarc.dkim", str(a, "dmarc.dkim"), "fail")
			eq(t, "dmarc.disposition", str(a, "dmarc.disposition"), "reject")
			eq(t, "dmarc.policy.np", str(a, "dmarc.policy.np"), "reject")
			eq(t, "dmarc.report.org_name", str(a, "dmarc.report.org_name"), "receiver.example.com")
			eqList(t, "dmarc.override.type", strs(a, "dmarc.override.type"), []string{"local_policy"})
			eq(t, "severity", r.LR.SeverityText(), "WARN")
			eq(t, "timestamp", r.LR.Timestamp().AsTime().Unix(), int64(1793491200))
		case ev == "tlsrpt.failure" && str(a, "tlsrpt.failure.result_type") == "certificate-expired":
			seen[ev] = true
			eq(t, "source.address", str(a, "source.address"), "203.0.113.5")
			eq(t, "destination.address", str(a, "destination.address"), "192.0.2.25")
			eqList(t, "tlsrpt.policy.mx_host", strs(a, "tlsrpt.policy.mx_host"), []string{"mx2.example.org"})
		case ev == "email.feedback_report":
			seen[ev] = true
			eq(t, "email.feedback.type", str(a, "email.feedback.type"), "auth-failure")
			eq(t, "source.address", str(a, "source.address"), "198.51.100.23")
		case ev == "email.dsn.recipient" && str(a, "email.dsn.recipient") == "nobody@example.com":
			seen[ev] = true
			eq(t, "email.dsn.status", str(a, "email.dsn.status"), "5.1.1")
			eq(t, "email.dsn.action", str(a, "email.dsn.action"), "failed")
			eq(t, "email.dsn.original_message_id", str(a, "email.dsn.original_message_id"), "minutes-7@example.org")
		}
	}
	if len(seen) != 4 {
		t.Errorf("rows checked by hand: %v, want one of each kind", seen)
	}
}

// TestReportBombs: bombs are answered 250, their email records name the
// limit, no row comes out of them, and the collector's peak RSS stays far
// below what they would expand to.
func TestReportBombs(t *testing.T) {
	tl := counts(t)
	c := startCollector(t, simpleConfig("bombs", "reports:\n  enabled: true"))
	bombs := []struct {
		name, wantErr string
		msg           []byte
	}{
		{"gzip 1 GiB", "larger than", reportgen.AggregateEmail("bomb-1", "application/gzip", "r.xml.gz", reportgen.GzipBomb(1<<30))},
		{"zip 1 GiB", "declares 1073741824 bytes", reportgen.AggregateEmail("bomb-2", "application/zip", "r.zip", reportgen.ZipBomb(1<<30))},
		{"5 nested gzip", "nesting limit", reportgen.AggregateEmail("bomb-3", "application/gzip", "r.xml.gz", reportgen.NestedGzip(reportgen.DefaultAggregate(reportgen.RFC9990).XML(), 5))},
		{"billion laughs", "invalid character entity", reportgen.Message("laughs", "bomb-4@example.net", "", reportgen.Part{ContentType: "text/xml", Filename: "r.xml", Body: reportgen.BillionLaughs()})},
	}
	for _, b := range bombs {
		if err := smtp.SendMail(c.addr(), nil, "bomb@example.net", []string{"dmarc@example.org"}, b.msg); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		tl.reply(250)
	}
	recs := c.waitExactly(len(bombs))
	tl.exported(len(recs))
	for i, b := range bombs {
		if got := str(recs[i].Attrs, "email.report.error"); !strings.Contains(got, b.wantErr) {
			t.Errorf("%s: email.report.error %q, want %q in it", b.name, got, b.wantErr)
		}
	}
	if peak := peakRSS(t, c.cmd.Process.Pid); peak > 512<<20 {
		t.Errorf("collector peak RSS %d MiB after the bombs", peak>>20)
	} else {
		t.Logf("collector peak RSS %d MiB", peak>>20)
	}
}

// peakRSS reads VmHWM of a process.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestDMARCReportsExample runs examples/dmarc-reports.yaml: of all the
// generated reports only the DMARC rows that failed come out.
func TestDMARCReportsExample(t *testing.T) {
	replay := mailreplayBinary(t)
	tl := counts(t)
	c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
		override := fmt.Sprintf("receivers:\n  smtp/dmarc_reports:\n    port: %d\nexporters:\n%s\nservice:\n%s  pipelines:\n    logs/dmarc_reports:\n      exporters: [file]\n",
			port, fileExporter(out), quietTelemetry)
		return []string{filepath.Join(repoRoot, "examples", "dmarc-reports.yaml"), writeFile(t, filepath.Join(dir, "override.yaml"), override)}
	})
	mbox, fixtures := fixtureMbox(t, t.TempDir())
	replayAll(t, tl, replay, len(fixtures), "-server", c.addr(), "-to", "dmarc@example.org", "-quiet", mbox)
	failing := 0
	for _, f := range fixtures {
		rows, _ := extractRows(f.Message, reports.Email{})
		for i := 0; i < rows.Len(); i++ {
			a := rows.At(i).Attributes()
			dkim, _ := a.Get("dmarc.dkim")
			spf, _ := a.Get("dmarc.spf")
			if rows.At(i).EventName() == "dmarc.aggregate.record" && !strings.EqualFold(dkim.Str(), "pass") && !strings.EqualFold(spf.Str(), "pass") {
				failing++
			}
		}
	}
	if failing == 0 {
		t.Fatal("the fixtures have no failing DMARC row")
	}
	recs := c.waitExactly(failing)
	tl.exported(len(recs))
	for _, r := range recs {
		if r.LR.EventName() != "dmarc.aggregate.record" || str(r.Attrs, "dmarc.dkim") == "pass" || str(r.Attrs, "dmarc.spf") == "pass" {
			t.Errorf("kept a record that did not fail DMARC: %q dkim %q spf %q", r.LR.EventName(), str(r.Attrs, "dmarc.dkim"), str(r.Attrs, "dmarc.spf"))
		}
	}
}
