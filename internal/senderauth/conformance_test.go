package senderauth

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"

	"github.com/smtpreceiver/smtpreceiver/internal/senderauth/dnstest"
)

// The openspf RFC 7208 test suite ships with blitiri.com.ar/go/spf. It is
// read from the module cache (never copied here) and served by a real DNS
// server on loopback, so every case goes through our resolver and cache
// as well as the SPF library.

type suiteDoc struct {
	Description string
	Tests       map[string]suiteTest
	ZoneData    map[string][]map[string]yaml.Node `yaml:"zonedata"`
}

type suiteTest struct {
	Helo     string
	Host     string
	MailFrom string `yaml:"mailfrom"`
	Result   yaml.Node
	Skip     string
}

func suitePath(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("no module cache: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "blitiri.com.ar", "go", "spf@v1.6.0", "testdata", "rfc7208-tests.yml")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("suite not in the module cache: %v", err)
	}
	return p
}

func readSuites(t *testing.T, path string) []suiteDoc {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []suiteDoc
	dec := yaml.NewDecoder(f)
	for {
		var d suiteDoc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
}

// strs reads a scalar or a list of scalars.
func strs(n yaml.Node) []string {
	var list []string
	if n.Decode(&list) == nil {
		return list
	}
	var one string
	_ = n.Decode(&one)
	return []string{one}
}

// zone is the suite's zonedata as DNS records, keyed by lower-case FQDN.
type zone struct {
	rrs    map[string][]dns.RR
	failed map[string]string // "timeout" or "servfail"
}

func zoneOf(data map[string][]map[string]yaml.Node) zone {
	z := zone{rrs: map[string][]dns.RR{}, failed: map[string]string{}}
	for name, records := range data {
		owner := dns.Fqdn(strings.ToLower(name))
		hdr := func(t uint16) dns.RR_Header {
			return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
		}
		hasTXT := false
		for _, rec := range records {
			_, ok := rec["TXT"]
			hasTXT = hasTXT || ok
		}
		for _, rec := range records {
			for typ, v := range rec {
				switch typ {
				case "A":
					for _, s := range strs(v) {
						z.rrs[owner] = append(z.rrs[owner], &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(s)})
					}
				case "AAAA":
					for _, s := range strs(v) {
						z.rrs[owner] = append(z.rrs[owner], &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.ParseIP(s)})
					}
				case "TXT":
					for _, s := range strs(v) {
						z.rrs[owner] = append(z.rrs[owner], &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: dnstest.TXTChunks(s)})
					}
				case "SPF":
					// Type SPF is gone in RFC 7208; like the suite's own
					// driver, serve it as TXT where no TXT exists.
					if !hasTXT {
						z.rrs[owner] = append(z.rrs[owner], &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: dnstest.TXTChunks(strings.Join(strs(v), ""))})
					}
				case "MX":
					var mx []any
					_ = v.Decode(&mx)
					if len(mx) == 2 {
						pref, _ := mx[0].(int)
						host, _ := mx[1].(string)
						z.rrs[owner] = append(z.rrs[owner], &dns.MX{Hdr: hdr(dns.TypeMX), Preference: uint16(pref), Mx: dns.Fqdn(host)})
					}
				case "PTR":
					for _, s := range strs(v) {
						z.rrs[owner] = append(z.rrs[owner], &dns.PTR{Hdr: hdr(dns.TypePTR), Ptr: dns.Fqdn(s)})
					}
				case "CNAME":
					for _, s := range strs(v) {
						z.rrs[owner] = append(z.rrs[owner], &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(strings.ToLower(s))})
					}
				case "TIMEOUT":
					z.failed[owner] = "timeout"
				case "SERVFAIL", "CNAMELOOP":
					z.failed[owner] = "servfail"
				}
			}
		}
	}
	return z
}

// serve answers like a recursive resolver: CNAMEs followed (a bounded
// number of times) and included in the answer, NXDOMAIN for unknown
// names, no answer at all for TIMEOUT names.
func (z zone) serve(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	name, qtype := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
	for hops := 0; hops < 8; hops++ {
		switch z.failed[name] {
		case "timeout":
			return
		case "servfail":
			m.Rcode = dns.RcodeServerFailure
			_ = w.WriteMsg(m)
			return
		}
		rrs, ok := z.rrs[name]
		if !ok {
			if len(m.Answer) == 0 {
				m.Rcode = dns.RcodeNameError
			}
			break
		}
		var cname string
		for _, rr := range rrs {
			if c, isCNAME := rr.(*dns.CNAME); isCNAME && qtype != dns.TypeCNAME {
				m.Answer = append(m.Answer, c)
				cname = c.Target
			} else if rr.Header().Rrtype == qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if cname == "" {
			break
		}
		name = cname
	}
	_ = w.WriteMsg(m)
}

// knownDeviations are the suite's cases this receiver answers differently,
// and why.
var knownDeviations = map[string]string{
	// The macro expands to a name with spaces; our resolver does not put
	// such names on the wire (they cannot be written in a zone file) and
	// treats them as not found.
	"macro-mania-in-domain": "name with spaces",
}

func TestRFC7208Suite(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suite skipped in -short mode")
	}
	docs := readSuites(t, suitePath(t))
	ran := 0
	for _, doc := range docs {
		z := zoneOf(doc.ZoneData)
		srv := dnstest.Start(t, dns.HandlerFunc(z.serve))
		d, err := NewDNS(DNSConfig{Server: srv.Addr, Timeout: 200 * time.Millisecond, CacheEntries: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for name, tc := range doc.Tests {
			if tc.Skip != "" || knownDeviations[name] != "" {
				continue
			}
			ran++
			got := checkSPF(context.Background(), d, net.ParseIP(tc.Host), tc.Helo, tc.MailFrom)
			if want := strs(tc.Result); !slices.Contains(want, got.Result) {
				t.Errorf("%s / %s: got %s (%s), want one of %v", doc.Description, name, got.Result, got.Reason, want)
			}
		}
	}
	if ran < 100 {
		t.Fatalf("only %d cases ran", ran)
	}
	t.Logf("%d cases of the RFC 7208 suite ran through a loopback DNS server", ran)
}
