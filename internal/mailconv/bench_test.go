package mailconv

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

// base64Lines encodes n pseudo-random bytes as 76-character base64 lines.
func base64Lines(n int) string {
	data := make([]byte, n)
	x := uint32(2463534242)
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	b.Grow(len(enc) + len(enc)/76*2 + 2)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
	return b.String()
}

func benchMessages(b *testing.B) map[string][]byte {
	read := func(name string) []byte {
		raw, err := os.ReadFile(filepath.Join(fixtureDir, name+".eml"))
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	head := "From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\nDate: Fri, 17 May 2024 12:00:00 +0200\r\n"
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2) + "\r\n"
	oneMiB := head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat(line, (1<<20)/len(line))
	// 25 MiB on the wire: a 20 MiB base64 attachment (15 MiB decoded), a
	// ~5 MiB CSV attachment and a short text body.
	csv := strings.Repeat("2024-05-17T10:00:00Z,web-01,cpu,97.5\r\n", (5<<20-300<<10)/38)
	big := head + "Content-Type: multipart/mixed; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain\r\n\r\nSee attachments.\r\n" +
		"--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=blob.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64Lines(15<<20) +
		"--XX\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=metrics.csv\r\n\r\n" + csv + "\r\n--XX--\r\n"
	return map[string][]byte{
		"small":                       read("plain-ascii"),
		"multipart":                   read("mixed-alternative-related-inline-image"),
		"1MiB":                        []byte(oneMiB),
		"25MiB_with_20MiB_attachment": []byte(big),
	}
}

func BenchmarkConvert(b *testing.B) {
	msgs := benchMessages(b)
	for _, name := range []string{"small", "multipart", "1MiB", "25MiB_with_20MiB_attachment"} {
		raw := msgs[name]
		b.Run(name, func(b *testing.B) {
			b.Logf("%s: %d bytes", name, len(raw))
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			opts := DefaultOptions()
			for b.Loop() {
				lr := plog.NewLogRecord()
				if _, err := Convert(bytes.NewReader(raw), goldenEnv, opts, lr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
