package senderauth

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func allChecks(timeout time.Duration) Config {
	return Config{SPF: true, DKIM: true, DMARC: true, Timeout: timeout, MaxDKIMSignatures: 5, AuthservID: "mx.example.com", TrustUpstream: []string{"relay.example.com"}}
}

// signedZone publishes SPF, an ed25519 key and DMARC for example.org.
func signedZone(t *testing.T) (*fakeDNS, string) {
	_, ek, _ := testKeys(t)
	f := newFakeDNS().
		addTXT("example.org", "v=spf1 ip4:192.0.2.0/24 -all").
		addTXT("ed1._domainkey.example.org", edKeyRecord(ek)).
		addTXT("_dmarc.example.org", "v=DMARC1; p=reject")
	return f, sign(t, plainMessage, "example.org", "ed1", ek)
}

// deliver streams msg into a check in chunks and finishes it.
func deliver(ck *Check, msg string) *Results {
	for b := []byte(msg); len(b) > 0; {
		n := min(len(b), 100)
		_, _ = ck.Write(b[:n])
		b = b[n:]
	}
	return ck.Finish()
}

func TestCheckVerified(t *testing.T) {
	f, msg := signedZone(t)
	var mu sync.Mutex
	counts := map[string]int{}
	obs := &Observer{Result: func(m, r string) { mu.Lock(); counts[m+"="+r]++; mu.Unlock() }, Duration: func(time.Duration) { mu.Lock(); counts["duration"]++; mu.Unlock() }}
	cfg := allChecks(5 * time.Second)
	cfg.Observer = obs
	c := NewChecker(cfg, f)
	res := deliver(c.Start(Params{ClientIP: clientIP, Helo: "mx.example.org", MailFrom: "alice@example.org", Verify: true}), msg)
	if res == nil || res.Source != SourceVerified || res.SPF.Result != "pass" || res.DKIM.Result != "pass" || res.DMARC.Result != "pass" || res.DMARC.Policy != "reject" {
		t.Fatalf("got %+v %+v %+v %+v", res, res.SPF, res.DKIM, res.DMARC)
	}
	want := "mx.example.com; spf=pass reason=\"matched ip\" smtp.mailfrom=example.org; dkim=pass header.a=ed25519-sha256 header.d=example.org header.i=@example.org header.s=ed1; dmarc=pass header.from=example.org policy.dmarc=reject"
	if res.AuthenticationResults != want {
		t.Fatalf("authentication_results\n got %s\nwant %s", res.AuthenticationResults, want)
	}
	for _, k := range []string{"spf=pass", "dkim=pass", "dmarc=pass", "duration"} {
		if counts[k] != 1 {
			t.Errorf("observer %s counted %d", k, counts[k])
		}
	}

	attrs, body := pcommon.NewMap(), pcommon.NewMap()
	res.PutAttributes(attrs)
	res.PutBody(body)
	wantAttrs := map[string]any{
		"email.auth.source": "verified", "email.spf.result": "pass", "email.spf.domain": "example.org", "email.spf.scope": "mfrom",
		"email.dkim.result": "pass", "email.dkim.domains": []any{"example.org"},
		"email.dmarc.result": "pass", "email.dmarc.policy": "reject", "email.dmarc.from_domain": "example.org",
	}
	got := attrs.AsRaw()
	if len(got) != len(wantAttrs) {
		t.Fatalf("attributes %v", got)
	}
	for k, v := range wantAttrs {
		if !equalRaw(got[k], v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	auth := body.AsRaw()["auth"].(map[string]any)
	sig := auth["dkim"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
	if sig["selector"] != "ed1" || sig["algorithm"] != "ed25519-sha256" || auth["dmarc"].(map[string]any)["aligned_spf"] != "example.org" || auth["authentication_results"] != want {
		t.Fatalf("body auth %v", auth)
	}
}

func equalRaw(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestCheckForgedUpstreamIgnored: Authentication-Results from a client
// that is not trusted change nothing, even with a trusted authserv-id.
func TestCheckForgedUpstreamIgnored(t *testing.T) {
	f := newFakeDNS().addTXT("_dmarc.example.org", "v=DMARC1; p=reject")
	c := NewChecker(allChecks(5*time.Second), f)
	msg := "Authentication-Results: relay.example.com; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org; dmarc=pass header.from=example.org\r\n" + plainMessage
	res := deliver(c.Start(Params{ClientIP: clientIP, Helo: "mx.example.net", MailFrom: "alice@example.org", Verify: true, Trusted: false}), msg)
	if res.Source != SourceVerified || res.DMARC.Result != "fail" || res.SPF.Result != "none" || res.DKIM.Result != "none" {
		t.Fatalf("forged results believed: %+v %+v %+v %+v", res, res.SPF, res.DKIM, res.DMARC)
	}
}

func TestCheckTrustedUpstream(t *testing.T) {
	f := newFakeDNS()
	c := NewChecker(allChecks(5*time.Second), f)
	msg := "Authentication-Results: relay.example.com;\r\n dkim=pass (1024-bit key; secure) header.d=example.org;\r\n spf=pass smtp.mailfrom=alice@example.org; dmarc=pass header.from=example.org\r\n" +
		"Authentication-Results: other.example.net; dmarc=fail header.from=example.org\r\n" + plainMessage
	p := Params{ClientIP: clientIP, Helo: "relay.example.com", MailFrom: "alice@example.org", Verify: false, Trusted: true}
	if !c.Wanted(p) {
		t.Fatal("a trusted client with trust_upstream must be checked for upstream results")
	}
	res := deliver(c.Start(p), msg)
	if res == nil || res.Source != SourceUpstream || res.SPF.Result != "pass" || res.DKIM.Result != "pass" || res.DMARC.Result != "pass" {
		t.Fatalf("got %+v", res)
	}
	if len(f.queries) != 0 {
		t.Fatalf("upstream results asked DNS: %v", f.queries)
	}
	// Without a trusted field there is nothing to record for a skipped client.
	if res := deliver(c.Start(p), plainMessage); res != nil {
		t.Fatalf("skipped client got %+v", res)
	}
	if NewChecker(Config{}, f).Wanted(Params{Trusted: true}) {
		t.Fatal("a skipped client without trust_upstream needs no check")
	}
}

// TestCheckTimeout: every lookup hangs; Finish gives temperror for all
// three methods once the timeout has passed, and leaves no goroutine.
func TestCheckTimeout(t *testing.T) {
	_, ek, _ := testKeys(t)
	f := newFakeDNS().failWith("example.org", "hang").failWith("ed1._domainkey.example.org", "hang").failWith("_dmarc.example.org", "hang")
	c := NewChecker(allChecks(200*time.Millisecond), f)
	res := deliver(c.Start(Params{ClientIP: clientIP, Helo: "mx.example.org", MailFrom: "alice@example.org", Verify: true}), sign(t, plainMessage, "example.org", "ed1", ek))
	if res.SPF.Result != "temperror" || res.DKIM.Result != "temperror" || res.DMARC.Result != "temperror" {
		t.Fatalf("got %+v %+v %+v", res.SPF, res.DKIM, res.DMARC)
	}
	if !strings.Contains(res.AuthenticationResults, "spf=temperror") {
		t.Fatalf("line %s", res.AuthenticationResults)
	}
}

func TestCheckAbort(t *testing.T) {
	f := newFakeDNS().failWith("example.org", "hang")
	c := NewChecker(allChecks(time.Minute), f)
	ck := c.Start(Params{ClientIP: clientIP, Helo: "mx.example.org", MailFrom: "alice@example.org", Verify: true})
	_, _ = ck.Write([]byte("From: a@example.org\r\n"))
	ck.Abort()
	if ck.Finish() != nil {
		t.Fatal("Finish after Abort must return nothing")
	}
	<-ck.spfDone // the hanging lookup ended with the abort
}

// TestCheckLimitsCounted: signatures past max_dkim_signatures and a header
// cut at MaxHeaderBytes are reported to the observer.
func TestCheckLimitsCounted(t *testing.T) {
	f, msg := signedZone(t)
	_, ek, _ := testKeys(t)
	var mu sync.Mutex
	var limits []string
	cfg := allChecks(5 * time.Second)
	cfg.MaxDKIMSignatures = 1
	cfg.MaxHeaderBytes = 2048
	cfg.Observer = &Observer{Limited: func(l string) { mu.Lock(); limits = append(limits, l); mu.Unlock() }}
	c := NewChecker(cfg, f)
	p := Params{ClientIP: clientIP, Helo: "mx.example.org", MailFrom: "alice@example.org", Verify: true}

	res := deliver(c.Start(p), sign(t, msg, "example.org", "ed1", ek))
	if res.DKIM.Ignored != 1 || len(limits) != 1 || limits[0] != "max_dkim_signatures" {
		t.Fatalf("ignored %d, limits %v", res.DKIM.Ignored, limits)
	}
	limits = nil
	long := "X-Padding: " + strings.Repeat("x", 4096) + "\r\n" + msg
	res = deliver(c.Start(p), long)
	if len(limits) != 1 || limits[0] != "max_header_bytes" {
		t.Fatalf("limits %v", limits)
	}
	if res.DMARC.Result != "permerror" {
		t.Fatalf("From beyond the kept header must not be guessed: %+v", res.DMARC)
	}
}

// TestCheckStartsDKIMOnlyForSignedHeaders: the verifier starts once the
// header is known, and only when it has a DKIM-Signature field; the bytes
// before that decision still reach it, however the message is chunked.
func TestCheckStartsDKIMOnlyForSignedHeaders(t *testing.T) {
	f, signed := signedZone(t)
	headerOnly := signed[:strings.Index(signed, "\r\n\r\n")+2] // ends inside the header
	lfOnly := strings.ReplaceAll(plainMessage, "\r\n", "\n")
	tests := []struct {
		name, msg    string
		chunk        int
		wantVerifier bool
		wantDKIM     string
	}{
		{"signed, one byte at a time", signed, 1, true, "pass"},
		{"signed, 3-byte chunks (end marker split)", signed, 3, true, "pass"},
		{"signed, in one write", signed, len(signed), true, "pass"},
		{"signed, ends inside the header", headerOnly, 7, true, "permerror"},
		{"unsigned", plainMessage, 100, false, "none"},
		{"unsigned, LF line ends", lfOnly, 5, false, "none"},
		{"unsigned, ends inside the header", plainMessage[:20], 4, false, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker(allChecks(5*time.Second), f)
			ck := c.Start(Params{ClientIP: clientIP, Helo: "mx.example.org", MailFrom: "alice@example.org", Verify: true})
			for b := []byte(tt.msg); len(b) > 0; {
				n := min(len(b), tt.chunk)
				_, _ = ck.Write(b[:n])
				b = b[n:]
			}
			res := ck.Finish()
			if got := ck.dkim != nil; got != tt.wantVerifier {
				t.Errorf("verifier started = %v, want %v", got, tt.wantVerifier)
			}
			if res == nil || res.DKIM == nil || res.DKIM.Result != tt.wantDKIM {
				t.Fatalf("dkim %+v, want %s", res.DKIM, tt.wantDKIM)
			}
		})
	}
}
