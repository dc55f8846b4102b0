//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/smtpreceiver/smtpreceiver/internal/senderauth/dnstest"
)

// dnsmasqZone is the test zone the collector's sender_auth asks: SPF, two
// DKIM keys and DMARC for example.test, SPF for other.test, NXDOMAIN for
// every other name under .test, and no answer at all under slow.test.
type dnsmasqZone struct {
	addr string // 127.0.0.1:port
}

// startDnsmasq runs Debian's dnsmasq on a free loopback port as the DNS
// server of the test zone, until the test ends. dnsmasq binds UDP and TCP
// on its port; a port taken by another process between the pick and the
// bind is retried with another one (bounded).
func startDnsmasq(t *testing.T, txt map[string][]string) dnsmasqZone {
	t.Helper()
	bin := need(t, "dnsmasq", "/usr/sbin/dnsmasq")
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers: slow.test times out
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	var lastErr error
	for range 5 {
		z, err := launchDnsmasq(t, bin, dnsmasqConf(t, txt, silent.LocalAddr().String()))
		if err == nil {
			return z
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("dnsmasq: %v", lastErr)
	return dnsmasqZone{}
}

// dnsmasqConf is the configuration, without the port line.
func dnsmasqConf(t *testing.T, txt map[string][]string, silent string) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listen-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nuser=%s\n", u.Username)
	conf.WriteString("local=/test/\nlocal-ttl=60\nlog-facility=-\n")
	fmt.Fprintf(&conf, "server=/slow.test/%s\n", strings.Replace(silent, ":", "#", 1))
	for name, chunks := range txt {
		quoted := make([]string, len(chunks))
		for i, c := range chunks {
			quoted[i] = `"` + c + `"`
		}
		fmt.Fprintf(&conf, "txt-record=%s,%s\n", name, strings.Join(quoted, ","))
	}
	return conf.String()
}

// launchDnsmasq starts dnsmasq on a free port and waits until it answers;
// it returns an error with dnsmasq's output when it exits or stays silent.
func launchDnsmasq(t *testing.T, bin, conf string) (dnsmasqZone, error) {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	confPath := writeFile(t, filepath.Join(dir, "dnsmasq.conf"), fmt.Sprintf("port=%d\n%s", port, conf))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--keep-in-foreground", "--conf-file="+confPath, "--pid-file="+filepath.Join(dir, "dnsmasq.pid"))
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return dnsmasqZone{}, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cancel()
		<-exited
	}
	z := dnsmasqZone{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	if err := z.waitReady(exited); err != nil {
		stop()
		return z, fmt.Errorf("%v; output:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("dnsmasq output:\n%s", logs.String())
		}
	})
	return z, nil
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitReady asks for the DMARC record until dnsmasq answers (bounded).
func (z dnsmasqZone) waitReady(exited <-chan struct{}) error {
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("_dmarc.example.test.", dns.TypeTXT)
	deadline := time.Now().Add(startTimeout)
	for {
		if r, _, err := c.Exchange(m, z.addr); err == nil && len(r.Answer) > 0 {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("dnsmasq exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dnsmasq did not answer on %s within %s", z.addr, startTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// exampleTestZone is SPF (loopback allowed), an ed25519 DKIM key
// (selector ed) and DMARC p=reject for example.test, and SPF -all for
// other.test; it returns the records and the signing key.
func exampleTestZone(t *testing.T) (map[string][]string, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]string{
		"example.test":               {"v=spf1 ip4:127.0.0.0/8 -all"},
		"_dmarc.example.test":        {"v=DMARC1; p=reject"},
		"ed._domainkey.example.test": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)},
		"other.test":                 {"v=spf1 -all"},
	}, key
}

func e2eSign(t *testing.T, msg, selector string, signer crypto.Signer) string {
	t.Helper()
	var out bytes.Buffer
	if err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{Domain: "example.test", Selector: selector, Signer: signer}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func authMail(from, subject string) string {
	return "From: " + from + "\r\nTo: ops@example.org\r\nSubject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.test>\r\n\r\nInput power lost.\r\n"
}

// TestSenderAuthDnsmasq sends signed and unsigned mail through the built
// collector whose sender_auth asks a real dnsmasq on loopback, and checks
// the results on the exported records.
func TestSenderAuthDnsmasq(t *testing.T) {
	records, edKey := exampleTestZone(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	records["rsa._domainkey.example.test"] = dnstest.TXTChunks("v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der))
	zone := startDnsmasq(t, records)

	c := startCollector(t, simpleConfig("e2e_auth", fmt.Sprintf(`
domain: mx.example.org
trusted_networks: [192.0.2.1/32]
sender_auth:
  enabled: true
  timeout: 3
  dns:
    server: %q
    timeout: 1
`, zone.addr)))
	tl := counts(t)
	dir := t.TempDir()
	send := func(mailFrom, helo, msg string) {
		t.Helper()
		path := writeFile(t, filepath.Join(dir, fmt.Sprintf("m%d.eml", time.Now().UnixNano())), msg)
		res := python(t, "--port", fmt.Sprint(c.port), "--helo", helo, "--mail-from", mailFrom, "--rcpt", "ops@example.org", "--message", path)
		tl.reply(res.Code)
		if res.Code != 250 {
			t.Fatalf("%s: reply %d %s", mailFrom, res.Code, res.Message)
		}
	}
	send("alice@example.test", "mx.example.test", e2eSign(t, authMail("Alice <alice@example.test>", "signed ed25519"), "ed", edKey))
	send("alice@example.test", "mx.example.test", e2eSign(t, authMail("alice@example.test", "signed rsa"), "rsa", rsaKey))
	send("x@other.test", "mx.other.test", authMail("CEO <ceo@example.test>", "spoofed"))
	send("ups@ups.slow.test", "ups.slow.test", authMail("ups@ups.slow.test", "slow dns"))
	send("a@nowhere.test", "nowhere.test", authMail("a@nowhere.test", "no records"))

	type want struct{ spf, dkim, dmarc, policy, dkimDomain string }
	cases := map[string]want{
		"signed ed25519": {"pass", "pass", "pass", "reject", "example.test"},
		"signed rsa":     {"pass", "pass", "pass", "reject", "example.test"},
		"spoofed":        {"fail", "none", "fail", "reject", ""},
		"slow dns":       {"temperror", "none", "temperror", "", ""},
		"no records":     {"none", "none", "none", "", ""},
	}
	tl.exported(len(cases))
	for subject, w := range cases {
		r := c.waitSubject(subject)
		eq(t, subject+": email.auth.source", str(r.Attrs, "email.auth.source"), "verified")
		eq(t, subject+": email.spf.result", str(r.Attrs, "email.spf.result"), w.spf)
		eq(t, subject+": email.dkim.result", str(r.Attrs, "email.dkim.result"), w.dkim)
		eq(t, subject+": email.dmarc.result", str(r.Attrs, "email.dmarc.result"), w.dmarc)
		eq(t, subject+": email.dmarc.policy", str(r.Attrs, "email.dmarc.policy"), w.policy)
		if w.dkimDomain != "" {
			eq(t, subject+": email.dkim.domains", str(r.Attrs, "email.dkim.domains"), `["`+w.dkimDomain+`"]`)
		}
		auth, ok := r.Body.Get("auth")
		if !ok || !strings.HasPrefix(str(auth.Map(), "authentication_results"), "mx.example.org; spf="+w.spf) {
			t.Errorf("%s: body auth %v", subject, auth.AsRaw())
		}
	}
}

// TestSenderAuthExample runs examples/sender-auth.yaml against the test
// zone: a spoof of a p=reject domain is dropped by its OTTL filter, a
// DMARC failure of a p=none domain is kept and marked, signed mail passes
// unmarked.
func TestSenderAuthExample(t *testing.T) {
	records, edKey := exampleTestZone(t)
	records["_dmarc.relaxed.test"] = []string{"v=DMARC1; p=none"}
	zone := startDnsmasq(t, records)
	c := startCollector(t, func(t *testing.T, dir string, port int, out string) []string {
		override := fmt.Sprintf(`receivers:
  smtp/sender_auth:
    port: %d
    sender_auth:
      dns:
        server: %q
exporters:
%s
service:
%s  pipelines:
    logs/sender_auth:
      exporters: [file]
`, port, zone.addr, fileExporter(out), quietTelemetry)
		return []string{filepath.Join(repoRoot, "examples", "sender-auth.yaml"), writeFile(t, filepath.Join(dir, "override.yaml"), override)}
	})
	tl := counts(t)
	dir := t.TempDir()
	send := func(name, mailFrom, msg string) {
		t.Helper()
		path := writeFile(t, filepath.Join(dir, name+".eml"), msg)
		res := python(t, "--port", fmt.Sprint(c.port), "--helo", "mx.other.test", "--mail-from", mailFrom, "--rcpt", "ops@example.org", "--message", path)
		tl.reply(res.Code)
		if res.Code != 250 {
			t.Fatalf("%s: reply %d %s", name, res.Code, res.Message)
		}
	}
	// The kept ones last: once they are exported, a spoof let through
	// would be there too.
	send("spoof", "x@other.test", authMail("CEO <ceo@example.test>", "spoof of a reject domain"))
	send("weak", "x@other.test", authMail("news@relaxed.test", "failure under p=none"))
	send("signed", "alice@example.test", e2eSign(t, authMail("alice@example.test", "genuine"), "ed", edKey))
	genuine := c.waitSubject("genuine")
	weak := c.waitSubject("failure under p=none")
	recs := c.settledRecords()
	tl.exported(len(recs))
	eq(t, "records exported", len(recs), 2)
	eq(t, "spoof dropped", countSubject(recs, "spoof of a reject domain"), 0)
	eq(t, "weak: email.dmarc.result", str(weak.Attrs, "email.dmarc.result"), "fail")
	eq(t, "weak: email.spoofed", str(weak.Attrs, "email.spoofed"), "true")
	eq(t, "genuine: email.dmarc.result", str(genuine.Attrs, "email.dmarc.result"), "pass")
	eq(t, "genuine: not marked", has(genuine.Attrs, "email.spoofed"), false)
}
