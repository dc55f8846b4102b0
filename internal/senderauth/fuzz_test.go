package senderauth

import (
	"testing"
	"time"
)

// FuzzCheck feeds hostile message bytes and hostile DNS text (served as
// the SPF, DMARC and DKIM key records) through a whole check, with the
// client trusted so the Authentication-Results parser runs too. It must
// not panic, and every result must be an RFC 8601 token.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(plainMessage), "v=DMARC1; p=reject; sp=none; np=quarantine; psd=y; t=y")
	f.Add([]byte("Authentication-Results: relay.example.com (c;(d)); SPF=Pass (x;y) smtp.mailfrom=a@example.org; dkim=pass header.d=\"a;b\"\r\nFrom: a@example.org\r\n\r\nbody"), "v=spf1 include:example.org -all")
	f.Add([]byte("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s; h=from; bh=; b=; l=5\r\nFrom: <>\r\n\r\n"), "v=DKIM1; k=rsa; p=")
	f.Add([]byte("From: a@example.org, b@example.net\n\nx"), "v=DMARC1")
	valid := map[string]bool{"pass": true, "fail": true, "softfail": true, "neutral": true, "none": true, "policy": true, "temperror": true, "permerror": true}
	f.Fuzz(func(t *testing.T, msg []byte, txt string) {
		dns := newFakeDNS().
			addTXT("example.org", txt).addTXT("_dmarc.example.org", txt).addTXT("s._domainkey.example.org", txt).
			addTXT("ed1._domainkey.example.org", txt)
		cfg := allChecks(2 * time.Second)
		cfg.TrustUpstream = []string{"other.example.com"}
		c := NewChecker(cfg, dns)
		for _, trusted := range []bool{false, true} {
			res := deliver(c.Start(Params{ClientIP: clientIP, Helo: "mx.example.org", MailFrom: "a@example.org", Verify: true, Trusted: trusted}), string(msg))
			if res == nil {
				t.Fatal("verified check returned nothing")
			}
			if res.Source == SourceUpstream {
				continue // upstream tokens are copied as given
			}
			for _, r := range []string{res.SPF.Result, res.DKIM.Result, res.DMARC.Result} {
				if !valid[r] {
					t.Fatalf("result %q is not an RFC 8601 token", r)
				}
			}
		}
	})
}
