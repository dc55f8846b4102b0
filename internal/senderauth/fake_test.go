package senderauth

import (
	"context"
	"net"
	"strings"
	"sync"
)

// fakeDNS is an in-memory zone for table tests. Names are matched without
// case and trailing dot. A name in fail answers with that failure:
// "servfail" (a temporary *net.DNSError), "timeout", "ctx" (a bare
// context error, as some resolvers return) or "hang" (blocks until the
// caller's context ends, then returns the bare context error).
type fakeDNS struct {
	mu      sync.Mutex
	txt     map[string][]string
	ip      map[string][]string
	mx      map[string][]string
	ptr     map[string][]string
	fail    map[string]string
	queries []string // "TYPE name", in order
}

func newFakeDNS() *fakeDNS {
	return &fakeDNS{txt: map[string][]string{}, ip: map[string][]string{}, mx: map[string][]string{}, ptr: map[string][]string{}, fail: map[string]string{}}
}

func norm(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func (f *fakeDNS) addTXT(name string, txt ...string) *fakeDNS {
	f.txt[norm(name)] = append(f.txt[norm(name)], txt...)
	return f
}

func (f *fakeDNS) addIP(name string, ips ...string) *fakeDNS {
	f.ip[norm(name)] = append(f.ip[norm(name)], ips...)
	return f
}

func (f *fakeDNS) addMX(name string, hosts ...string) *fakeDNS {
	f.mx[norm(name)] = append(f.mx[norm(name)], hosts...)
	return f
}

func (f *fakeDNS) failWith(name, how string) *fakeDNS {
	f.fail[norm(name)] = how
	return f
}

// count returns how many queries of type qtype asked names with prefix.
func (f *fakeDNS) count(qtype, prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, q := range f.queries {
		if strings.HasPrefix(q, qtype+" "+prefix) {
			n++
		}
	}
	return n
}

func (f *fakeDNS) lookup(ctx context.Context, qtype, name string, table map[string][]string) ([]string, error) {
	name = norm(name)
	f.mu.Lock()
	f.queries = append(f.queries, qtype+" "+name)
	how := f.fail[name]
	vals := table[name]
	f.mu.Unlock()
	switch how {
	case "servfail":
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	case "timeout":
		return nil, &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true}
	case "ctx":
		return nil, context.DeadlineExceeded
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if len(vals) == 0 {
		err := &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		return nil, err
	}
	return vals, nil
}

func (f *fakeDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return f.lookup(ctx, "TXT", name, f.txt)
}

func (f *fakeDNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	hosts, err := f.lookup(ctx, "MX", name, f.mx)
	var out []*net.MX
	for i, h := range hosts {
		out = append(out, &net.MX{Host: h, Pref: uint16(10 * (i + 1))})
	}
	return out, err
}

func (f *fakeDNS) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := f.lookup(ctx, "A", host, f.ip)
	var out []net.IPAddr
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return out, err
}

func (f *fakeDNS) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return f.lookup(ctx, "PTR", addr, f.ptr)
}
