//go:debug rsa1024min=0

package senderauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// Keys are generated once per test binary; nothing secret is committed.
var (
	keysOnce  sync.Once
	rsaKey    *rsa.PrivateKey
	edKey     ed25519.PrivateKey
	shortKey  *rsa.PrivateKey
	keysError error
)

func testKeys(t *testing.T) (*rsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		if rsaKey, keysError = rsa.GenerateKey(rand.Reader, 2048); keysError != nil {
			return
		}
		if _, edKey, keysError = ed25519.GenerateKey(rand.Reader); keysError != nil {
			return
		}
		// Below the 1024 bits RFC 8301 requires (the go:debug line
		// above lets crypto/rsa make one).
		shortKey, keysError = rsa.GenerateKey(rand.Reader, 512)
	})
	if keysError != nil {
		t.Fatal(keysError)
	}
	return rsaKey, edKey, shortKey
}

func rsaKeyRecord(t *testing.T, k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

func edKeyRecord(k ed25519.PrivateKey) string {
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

const plainMessage = "From: Alice <alice@example.org>\r\n" +
	"To: bob@example.com\r\n" +
	"Subject: quarterly numbers\r\n" +
	"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"\r\n" +
	"Hello Bob,\r\nthe numbers are in.\r\n"

// sign prepends a DKIM-Signature made with signer for domain/selector.
func sign(t *testing.T, msg, domain, selector string, signer crypto.Signer) string {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// runDKIM streams msg into a verifier in small writes, as DATA arrives.
func runDKIM(t *testing.T, r Resolver, msg string, maxSigs int) *DKIMResults {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startDKIM(ctx, r, maxSigs)
	var tap headerTap
	tap.limit = 1 << 20
	for b := []byte(msg); len(b) > 0; {
		n := min(len(b), 7)
		tap.Write(b[:n])
		_, _ = d.pipe.Write(b[:n])
		b = b[n:]
	}
	d.pipe.CloseWrite()
	<-d.done
	hdr := tap.fields()
	return d.results(hdr.dkimSignature, true)
}

func TestDKIM(t *testing.T) {
	rk, ek, sk := testKeys(t)
	signedRSA := sign(t, plainMessage, "example.org", "rsa1", rk)
	signedEd := sign(t, plainMessage, "example.org", "ed1", ek)
	zone := func() *fakeDNS {
		return newFakeDNS().
			addTXT("rsa1._domainkey.example.org", rsaKeyRecord(t, rk)).
			addTXT("ed1._domainkey.example.org", edKeyRecord(ek))
	}
	tests := []struct {
		name     string
		dns      *fakeDNS
		msg      string
		maxSigs  int
		want     string
		wantSigs []string // result per verified signature
		ignored  int
	}{
		{"unsigned is none", zone(), plainMessage, 5, "none", nil, 0},
		{"rsa-2048 passes", zone(), signedRSA, 5, "pass", []string{"pass"}, 0},
		{"ed25519 passes", zone(), signedEd, 5, "pass", []string{"pass"}, 0},
		{"both pass", zone(), sign(t, signedRSA, "example.org", "ed1", ek), 5, "pass", []string{"pass", "pass"}, 0},
		{"changed body fails", zone(), strings.Replace(signedRSA, "are in", "are out", 1), 5, "fail", []string{"fail"}, 0},
		{"changed subject fails", zone(), strings.Replace(signedEd, "quarterly", "yearly", 1), 5, "fail", []string{"fail"}, 0},
		{"revoked key (p=) is permerror", newFakeDNS().addTXT("rsa1._domainkey.example.org", "v=DKIM1; k=rsa; p="), signedRSA, 5, "permerror", []string{"permerror"}, 0},
		{"missing key is permerror", newFakeDNS(), signedRSA, 5, "permerror", []string{"permerror"}, 0},
		{"several key records is permerror", zone().addTXT("rsa1._domainkey.example.org", "v=DKIM1; p=AAAA"), signedRSA, 5, "permerror", []string{"permerror"}, 0},
		{"key servfail is temperror", newFakeDNS().failWith("rsa1._domainkey.example.org", "servfail"), signedRSA, 5, "temperror", []string{"temperror"}, 0},
		{"key bare context error is temperror", newFakeDNS().failWith("rsa1._domainkey.example.org", "ctx"), signedRSA, 5, "temperror", []string{"temperror"}, 0},
		{"short rsa key is permerror", newFakeDNS().addTXT("short._domainkey.example.org", rsaKeyRecord(t, sk)), sign(t, plainMessage, "example.org", "short", sk), 5, "permerror", []string{"permerror"}, 0},
		{"rsa-sha1 is permerror", zone(), strings.Replace(signedRSA, "a=rsa-sha256", "a=rsa-sha1", 1), 5, "permerror", []string{"permerror"}, 0},
		{"l= is policy", zone(), strings.Replace(signedRSA, "DKIM-Signature: ", "DKIM-Signature: l=10; ", 1), 5, "policy", []string{"policy"}, 0},
		{"one passing of two is pass", zone(), sign(t, strings.Replace(signedRSA, "bh=", "bh=AAAA", 1), "example.org", "ed1", ek), 5, "pass", []string{"pass", "fail"}, 0},
		{"first result when none passes", newFakeDNS(), sign(t, signedRSA, "example.org", "ed1", ek), 5, "permerror", []string{"permerror", "permerror"}, 0},
		{"max signatures", zone(), signN(t, signedEd, 6, ek), 5, "pass", []string{"pass", "pass", "pass", "pass", "pass"}, 2},
		{"max signatures 0 is read as 1", zone(), signN(t, signedEd, 2, ek), 0, "pass", []string{"pass"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runDKIM(t, tt.dns, tt.msg, tt.maxSigs)
			if got.Result != tt.want || got.Ignored != tt.ignored {
				t.Fatalf("result %s ignored %d, want %s and %d; %+v", got.Result, got.Ignored, tt.want, tt.ignored, got.Signatures)
			}
			if len(got.Signatures) != len(tt.wantSigs) {
				t.Fatalf("%d signatures judged, want %d: %+v", len(got.Signatures), len(tt.wantSigs), got.Signatures)
			}
			for i, s := range got.Signatures {
				if s.Result != tt.wantSigs[i] {
					t.Errorf("signature %d: %+v, want %s", i, s, tt.wantSigs[i])
				}
				if s.Domain != "example.org" || s.Selector == "" || s.Algorithm == "" || s.Identifier == "" {
					t.Errorf("signature %d lacks details: %+v", i, s)
				}
				if s.Result != "pass" && s.Reason == "" {
					t.Errorf("signature %d has no reason: %+v", i, s)
				}
			}
		})
	}
}

// signN adds n more ed25519 signatures on top of msg.
func signN(t *testing.T, msg string, n int, k ed25519.PrivateKey) string {
	for range n {
		msg = sign(t, msg, "example.org", "ed1", k)
	}
	return msg
}

func TestDKIMDetails(t *testing.T) {
	rk, ek, _ := testKeys(t)
	f := newFakeDNS().addTXT("rsa1._domainkey.example.org", rsaKeyRecord(t, rk)).addTXT("ed1._domainkey.example.org", edKeyRecord(ek))
	got := runDKIM(t, f, sign(t, sign(t, plainMessage, "example.org", "rsa1", rk), "example.org", "ed1", ek), 5)
	want := []DKIMSignature{
		{Result: "pass", Domain: "example.org", Selector: "ed1", Algorithm: "ed25519-sha256", Identifier: "@example.org"},
		{Result: "pass", Domain: "example.org", Selector: "rsa1", Algorithm: "rsa-sha256", Identifier: "@example.org"},
	}
	if len(got.Signatures) != 2 || got.Signatures[0] != want[0] || got.Signatures[1] != want[1] {
		t.Fatalf("got %+v\nwant %+v", got.Signatures, want)
	}
	if d := got.PassingDomains(); len(d) != 1 || d[0] != "example.org" {
		t.Fatalf("passing domains %v", d)
	}
}

// TestDKIMTimeout: a key lookup that never answers ends with the context
// and the signature is temperror; the writer was never blocked.
func TestDKIMTimeout(t *testing.T) {
	rk, _, _ := testKeys(t)
	f := newFakeDNS().failWith("rsa1._domainkey.example.org", "hang")
	ctx, cancel := context.WithCancel(context.Background())
	d := startDKIM(ctx, f, 5)
	msg := sign(t, plainMessage+strings.Repeat("more body text\r\n", 20000), "example.org", "rsa1", rk)
	var tap headerTap
	tap.limit = 1 << 20
	tap.Write([]byte(msg))
	_, _ = d.pipe.Write([]byte(msg)) // returns while the verifier waits for the key
	d.pipe.CloseWrite()
	cancel()
	<-d.done
	hdr := tap.fields()
	got := d.results(hdr.dkimSignature, true)
	if got.Result != "temperror" {
		t.Fatalf("got %+v", got)
	}
	unfinished := d.results(hdr.dkimSignature, false)
	if unfinished.Result != "temperror" {
		t.Fatalf("unfinished: got %+v", unfinished)
	}
}

// TestTagValue: tags as RFC 6376 section 3.2 reads them (whitespace inside
// values removed, the last of a repeated tag, malformed pairs skipped), the
// same as splitting the whole list into a map.
func TestTagValue(t *testing.T) {
	list := "v=1; a = RSA-SHA256 ;d=Example.ORG; s=sel\r\n 2026;\ti=@exa mple.org; bogus; d=example.net; h=from:to; b=ab\r\n\tcd; empty="
	want := map[string]string{}
	for _, pair := range strings.Split(list, ";") {
		if k, v, ok := strings.Cut(pair, "="); ok {
			want[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), "")
		}
	}
	for _, tag := range []string{"v", "a", "d", "s", "i", "h", "b", "empty", "bogus", "l"} {
		_, inMap := want[tag]
		if got := tagValue(list, tag); got != want[tag] || hasTag(list, tag) != inMap {
			t.Errorf("tag %s: %q (found %v), want %q (found %v)", tag, got, hasTag(list, tag), want[tag], inMap)
		}
	}
}
