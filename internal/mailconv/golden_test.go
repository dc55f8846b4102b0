package mailconv

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/mail")

const fixtureDir = "../../testdata/mail"

// goldenEnv is the envelope every fixture is converted with.
var goldenEnv = Envelope{
	From:       "sender@example.org",
	To:         []string{"alerts@example.com", "ops@example.com"},
	Client:     netip.MustParseAddrPort("192.0.2.10:53211"),
	Helo:       "mail.example.org",
	TLSVersion: "1.3",
	TLSCipher:  "TLS_AES_128_GCM_SHA256",
	ReceivedAt: time.Date(2024, 5, 17, 10, 30, 0, 123456789, time.UTC),
}

// fixtureOptions derives options from the fixture name so that limit and
// option behaviour is pinned by goldens too.
func fixtureOptions(name string) Options {
	opts := DefaultOptions()
	if strings.HasPrefix(name, "limits-") {
		opts.MaxBodyBytes = 64
		opts.MaxHeaderBytes = 512
		opts.MaxDepth = 4
		opts.MaxParts = 5
	}
	if strings.Contains(name, "html-to-text") {
		opts.HTMLToText = true
	}
	if strings.Contains(name, "with-content") {
		opts.IncludeAttachmentContent = true
		opts.MaxAttachmentContentBytes = 64
	}
	if strings.Contains(name, "json-body") {
		opts.BodyFormat = BodyFormatJSON
	}
	return opts
}

func fixtures(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.eml"))
	require.NoError(t, err)
	return files
}

func TestGolden(t *testing.T) {
	files := fixtures(t)
	require.GreaterOrEqual(t, len(files), 60, "fixture count")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			lr := plog.NewLogRecord()
			res, err := Convert(bytes.NewReader(raw), goldenEnv, fixtureOptions(name), lr)
			require.NoError(t, err)
			require.Equal(t, int64(len(raw)), res.Size)
			got := goldenJSON(t, lr, res)

			goldenPath := strings.TrimSuffix(file, ".eml") + ".golden.json"
			if *update {
				require.NoError(t, os.WriteFile(goldenPath, got, 0o644))
				return
			}
			want, err := os.ReadFile(goldenPath)
			require.NoError(t, err, "run go test ./internal/mailconv -update")
			require.Equal(t, string(want), string(got))
		})
	}
}

// goldenJSON renders everything observable with sorted keys.
func goldenJSON(t testing.TB, lr plog.LogRecord, res Result) []byte {
	doc := map[string]any{
		"timestamp":          lr.Timestamp().AsTime().UTC().Format(time.RFC3339Nano),
		"observed_timestamp": lr.ObservedTimestamp().AsTime().UTC().Format(time.RFC3339Nano),
		"body":               lr.Body().AsRaw(),
		"attributes":         lr.Attributes().AsRaw(),
		"result": map[string]any{
			"size":         res.Size,
			"parse_errors": res.ParseErrors,
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(doc))
	return buf.Bytes()
}
