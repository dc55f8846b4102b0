package senderauth

import (
	"context"
	"fmt"
	"net"
	"testing"
)

var clientIP = net.ParseIP("192.0.2.10")

func TestCheckSPF(t *testing.T) {
	tests := []struct {
		name      string
		zone      func(*fakeDNS)
		helo      string
		mailFrom  string
		want      string
		wantScope string
		wantDom   string
	}{
		{"pass", func(f *fakeDNS) { f.addTXT("example.org", "v=spf1 ip4:192.0.2.0/24 -all") }, "mx.example.org", "a@example.org", "pass", "mfrom", "example.org"},
		{"fail", func(f *fakeDNS) { f.addTXT("example.org", "v=spf1 ip4:198.51.100.1 -all") }, "mx.example.org", "a@example.org", "fail", "mfrom", "example.org"},
		{"softfail", func(f *fakeDNS) { f.addTXT("example.org", "v=spf1 ~all") }, "mx.example.org", "a@example.org", "softfail", "mfrom", "example.org"},
		{"neutral", func(f *fakeDNS) { f.addTXT("example.org", "v=spf1 ?all") }, "mx.example.org", "a@example.org", "neutral", "mfrom", "example.org"},
		{"no record is none", func(f *fakeDNS) { f.addTXT("example.org", "some other text") }, "mx.example.org", "a@example.org", "none", "mfrom", "example.org"},
		{"nxdomain is none", func(f *fakeDNS) {}, "mx.example.org", "a@nowhere.example.org", "none", "mfrom", "nowhere.example.org"},
		{"servfail is temperror", func(f *fakeDNS) { f.failWith("example.org", "servfail") }, "mx.example.org", "a@example.org", "temperror", "mfrom", "example.org"},
		{"timeout is temperror", func(f *fakeDNS) { f.failWith("example.org", "timeout") }, "mx.example.org", "a@example.org", "temperror", "mfrom", "example.org"},
		{"bare context error is temperror", func(f *fakeDNS) { f.failWith("example.org", "ctx") }, "mx.example.org", "a@example.org", "temperror", "mfrom", "example.org"},
		{"several spf records is permerror", func(f *fakeDNS) {
			f.addTXT("example.org", "v=spf1 -all", "v=spf1 +all", "unrelated")
		}, "mx.example.org", "a@example.org", "permerror", "mfrom", "example.org"},
		{"several TXT records, one spf", func(f *fakeDNS) {
			f.addTXT("example.org", "google-site-verification=x", "v=spf1 ip4:192.0.2.10 -all")
		}, "mx.example.org", "a@example.org", "pass", "mfrom", "example.org"},
		{"include loop is permerror", func(f *fakeDNS) {
			f.addTXT("example.org", "v=spf1 include:loop.example.org -all")
			f.addTXT("loop.example.org", "v=spf1 include:example.org -all")
		}, "mx.example.org", "a@example.org", "permerror", "mfrom", "example.org"},
		{"include of a temperror is temperror", func(f *fakeDNS) {
			f.addTXT("example.org", "v=spf1 include:broken.example.com -all")
			f.failWith("broken.example.com", "ctx")
		}, "mx.example.org", "a@example.org", "temperror", "mfrom", "example.org"},
		{"more than 10 lookups is permerror", func(f *fakeDNS) {
			rec := "v=spf1"
			for i := range 11 {
				rec += fmt.Sprintf(" a:h%d.example.org", i)
				f.addIP(fmt.Sprintf("h%d.example.org", i), "198.51.100.1")
			}
			f.addTXT("example.org", rec+" -all")
		}, "mx.example.org", "a@example.org", "permerror", "mfrom", "example.org"},
		{"10 lookups are allowed", func(f *fakeDNS) {
			rec := "v=spf1"
			for i := range 9 {
				rec += fmt.Sprintf(" a:h%d.example.org", i)
				f.addIP(fmt.Sprintf("h%d.example.org", i), "198.51.100.1")
			}
			f.addIP("h9.example.org", "192.0.2.10")
			f.addTXT("example.org", rec+" a:h9.example.org -all")
		}, "mx.example.org", "a@example.org", "pass", "mfrom", "example.org"},
		{"more than 2 void lookups is permerror", func(f *fakeDNS) {
			f.addTXT("example.org", "v=spf1 a:v1.example.org a:v2.example.org a:v3.example.org ip4:192.0.2.10 -all")
		}, "mx.example.org", "a@example.org", "permerror", "mfrom", "example.org"},
		{"2 void lookups are allowed", func(f *fakeDNS) {
			f.addTXT("example.org", "v=spf1 a:v1.example.org a:v2.example.org ip4:192.0.2.10 -all")
		}, "mx.example.org", "a@example.org", "pass", "mfrom", "example.org"},
		{"null sender checks HELO", func(f *fakeDNS) {
			f.addTXT("mx.example.net", "v=spf1 ip4:192.0.2.10 -all")
			f.addTXT("example.org", "v=spf1 -all")
		}, "mx.example.net", "", "pass", "helo", "mx.example.net"},
		{"null sender with an address literal HELO is none", func(f *fakeDNS) {}, "[192.0.2.10]", "", "none", "helo", "[192.0.2.10]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDNS()
			tt.zone(f)
			got := checkSPF(context.Background(), f, clientIP, tt.helo, tt.mailFrom)
			if got.Result != tt.want || got.Scope != tt.wantScope || got.Domain != tt.wantDom {
				t.Fatalf("got %+v, want result %s scope %s domain %s", got, tt.want, tt.wantScope, tt.wantDom)
			}
		})
	}
}

// TestCheckSPFContextEndsLookups: a resolver that blocks until the
// context ends gives temperror once the context is done.
func TestCheckSPFContextEndsLookups(t *testing.T) {
	f := newFakeDNS().failWith("example.org", "hang")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := checkSPF(ctx, f, clientIP, "mx.example.org", "a@example.org")
	if got.Result != "temperror" {
		t.Fatalf("got %+v, want temperror", got)
	}
}
