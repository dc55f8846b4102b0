package smtpreceiver

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/smtpreceiver/smtpreceiver/internal/senderauth/dnstest"
)

// BenchmarkSenderAuthCost sends 4 KiB messages (unsigned, rsa-2048-signed
// and ed25519-signed) over 8 sessions at once, with sender_auth off and then
// on (SPF, DKIM and DMARC against a loopback DNS server, cache warm); each
// "on" line reports the throughput lost against the "off" run just before
// it as %throughput_cost (target: at most 20%). It measures and does not
// gate.
func BenchmarkSenderAuthCost(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	srv := dnstest.Start(b, dnstest.Zone{TXT: map[string][]string{
		"example.org":                {"v=spf1 ip4:127.0.0.0/8 -all"},
		"rsa._domainkey.example.org": {"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)},
		"ed._domainkey.example.org":  {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub)},
		"_dmarc.example.org":         {"v=DMARC1; p=reject"},
	}})
	msg := strings.Replace(benchMessage, "bench@example.com", "bench@example.org", 1)
	sign := func(selector string, key crypto.Signer) string {
		var signed bytes.Buffer
		if err := dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{Domain: "example.org", Selector: selector, Signer: key}); err != nil {
			b.Fatal(err)
		}
		return signed.String()
	}
	messages := []struct{ name, msg string }{
		{"unsigned", msg},
		{"rsa-2048", sign("rsa", rsaKey)},
		{"ed25519", sign("ed", edKey)},
	}
	for _, m := range messages {
		b.Run(m.name, func(b *testing.B) { benchSenderAuthCost(b, srv.Addr, m.msg) })
	}
}

// benchSenderAuthCost runs msg with sender_auth off, then on.
func benchSenderAuthCost(b *testing.B, dnsServer, msg string) {
	const sessions = 8
	perMessage := map[bool]time.Duration{}
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			r := startBenchReceiver(b, testConfig(func(c *Config) {
				c.TrustedNetworks = nil
				c.SenderAuth.Enabled = on
				c.SenderAuth.DNS.Server = dnsServer
			}))
			clients := make([]*benchClient, sessions)
			for i := range clients {
				clients[i] = dialBench(b, r.addr())
				clients[i].transaction("bench@example.org", msg) // warms the cache
			}
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, c := range clients {
				n := b.N / sessions
				if i < b.N%sessions {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						c.transaction("bench@example.org", msg)
					}
				}()
			}
			wg.Wait()
			perMessage[on] = b.Elapsed() / time.Duration(max(b.N, 1))
			if on && perMessage[false] > 0 {
				// Throughput lost against the "off" run just before.
				b.ReportMetric(100*(1-float64(perMessage[false])/float64(perMessage[true])), "%throughput_cost")
			}
		})
	}
}
