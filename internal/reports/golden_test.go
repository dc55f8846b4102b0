package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

var update = flag.Bool("update", false, "rewrite testdata/mail and testdata/golden from the generator")

var testEmail = Email{
	ClientAddress: "192.0.2.1",
	MailFrom:      "noreply-dmarc@receiver.example.com",
	MessageID:     "report-1@receiver.example.com",
	ReceivedAt:    time.Date(2026, 11, 2, 1, 2, 4, 0, time.UTC),
}

// golden is the comparable form of one Extract call.
type golden struct {
	Email   map[string]any   `json:"email_record_attributes"`
	Records []map[string]any `json:"records"`
}

func extractGolden(t testing.TB, msg []byte) golden {
	t.Helper()
	out := plog.NewLogRecordSlice()
	res := Extract(context.Background(), msg, testEmail, Options{}, out)
	email := plog.NewLogRecord()
	res.Annotate(email)
	g := golden{Email: email.Attributes().AsRaw()}
	for i := 0; i < out.Len(); i++ {
		lr := out.At(i)
		g.Records = append(g.Records, map[string]any{
			"event_name":         lr.EventName(),
			"severity":           lr.SeverityText(),
			"severity_number":    int32(lr.SeverityNumber()),
			"timestamp":          lr.Timestamp().AsTime().Format(time.RFC3339Nano),
			"observed_timestamp": lr.ObservedTimestamp().AsTime().Format(time.RFC3339Nano),
			"attributes":         lr.Attributes().AsRaw(),
			"body":               lr.Body().AsRaw(),
		})
	}
	if res.Rows != out.Len() {
		t.Fatalf("Result.Rows = %d, records appended = %d", res.Rows, out.Len())
	}
	return g
}

// TestGolden runs every generated fixture through Extract and compares the
// records with testdata/golden; the fixtures themselves are kept under
// testdata/mail for mailreplay and for reading. Run with -update after a
// deliberate change.
func TestGolden(t *testing.T) {
	for _, f := range reportgen.Fixtures() {
		t.Run(f.Name, func(t *testing.T) {
			mailPath := filepath.Join("testdata", "mail", f.Name+".eml")
			goldenPath := filepath.Join("testdata", "golden", f.Name+".json")
			got, err := json.MarshalIndent(extractGolden(t, f.Message), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if *update {
				for path, data := range map[string][]byte{mailPath: f.Message, goldenPath: got} {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			wantMail, err := os.ReadFile(mailPath)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(wantMail, f.Message) {
				t.Errorf("%s differs from the generator (run go test -run TestGolden -update)", mailPath)
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("records differ from %s:\n%s", goldenPath, got)
			}
		})
	}
}
