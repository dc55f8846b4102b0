package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/smtpreceiver/smtpreceiver/internal/senderauth"
)

// SenderAuthConfig is the sender_auth block: SPF, DKIM and DMARC results
// recorded on every record. It records and never rejects.
type SenderAuthConfig struct {
	// Enabled is off by default: no DNS traffic unless asked.
	Enabled bool     `mapstructure:"enabled"`
	Checks  []string `mapstructure:"checks"`
	// Timeout, in seconds, bounds how long the reply to DATA waits for the
	// checks once the message has ended.
	Timeout             int    `mapstructure:"timeout"`
	MaxDKIMSignatures   int    `mapstructure:"max_dkim_signatures"`
	DMARCDiscovery      string `mapstructure:"dmarc_discovery"`
	SkipTrustedNetworks bool   `mapstructure:"skip_trusted_networks"`
	SkipAuthenticated   bool   `mapstructure:"skip_authenticated"`
	// AuthservID names this receiver in the Authentication-Results line
	// of the record; empty means domain.
	AuthservID string `mapstructure:"authserv_id"`
	// TrustUpstream lists authserv-ids whose Authentication-Results are
	// believed, from clients in trusted_networks only.
	TrustUpstream []string            `mapstructure:"trust_upstream"`
	DNS           SenderAuthDNSConfig `mapstructure:"dns"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SenderAuthDNSConfig is sender_auth.dns.
type SenderAuthDNSConfig struct {
	// Server is host:port of a recursive resolver; empty is the system's.
	Server string `mapstructure:"server"`
	// Timeout of one query, in seconds.
	Timeout int `mapstructure:"timeout"`
	// CacheEntries caps the answer cache shared by all sessions; 0 turns
	// it off.
	CacheEntries int `mapstructure:"cache_entries"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Sender authentication checks.
const (
	checkSPF   = "spf"
	checkDKIM  = "dkim"
	checkDMARC = "dmarc"
)

func defaultSenderAuthConfig() SenderAuthConfig {
	return SenderAuthConfig{
		Checks:              []string{checkSPF, checkDKIM, checkDMARC},
		Timeout:             5,
		MaxDKIMSignatures:   5,
		DMARCDiscovery:      senderauth.DiscoveryTreeWalk,
		SkipTrustedNetworks: true,
		SkipAuthenticated:   true,
		TrustUpstream:       []string{},
		DNS:                 SenderAuthDNSConfig{Timeout: 2, CacheEntries: 10000},
	}
}

// validate checks the block; each error names the field and the fix.
func (c *SenderAuthConfig) validate(trustedNetworks []string) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sender_auth.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	for i, ch := range c.Checks {
		switch {
		case ch != checkSPF && ch != checkDKIM && ch != checkDMARC:
			add(fmt.Sprintf("checks[%d]", i), "%q is not a check; use spf, dkim and/or dmarc", ch)
		case seen[ch]:
			add(fmt.Sprintf("checks[%d]", i), "%q is listed twice; list each check once", ch)
		}
		seen[ch] = true
	}
	if c.Enabled && len(c.Checks) == 0 {
		add("checks", "must list at least one check when enabled, e.g. checks: [spf, dkim, dmarc]")
	}
	if seen[checkDMARC] && !seen[checkSPF] && !seen[checkDKIM] {
		add("checks", "dmarc needs spf or dkim (it aligns their results); use checks: [spf, dkim, dmarc]")
	}
	if c.Timeout <= 0 {
		add("timeout", "must be greater than 0, got %d; set it in seconds, e.g. timeout: 5", c.Timeout)
	}
	if c.MaxDKIMSignatures <= 0 || c.MaxDKIMSignatures > 50 {
		add("max_dkim_signatures", "must be between 1 and 50, got %d; e.g. max_dkim_signatures: 5", c.MaxDKIMSignatures)
	}
	switch c.DMARCDiscovery {
	case senderauth.DiscoveryTreeWalk, senderauth.DiscoveryPSL:
	default:
		add("dmarc_discovery", `must be "treewalk" (RFC 9989) or "psl" (RFC 7489), got %q`, c.DMARCDiscovery)
	}
	for i, id := range c.TrustUpstream {
		if id == "" {
			add(fmt.Sprintf("trust_upstream[%d]", i), "is empty; list the authserv-id your relay writes in Authentication-Results, e.g. mx.example.com")
		}
	}
	if len(c.TrustUpstream) > 0 && len(trustedNetworks) == 0 {
		add("trust_upstream", "has no effect without trusted_networks (upstream results are believed only from them); add your relay, e.g. trusted_networks: [192.0.2.25]")
	}
	if c.DNS.Server != "" {
		if host, port, err := net.SplitHostPort(c.DNS.Server); err != nil || host == "" {
			add("dns.server", "must be host:port, got %q; e.g. server: 127.0.0.1:53 (empty uses the system resolver)", c.DNS.Server)
		} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			add("dns.server", "port must be between 1 and 65535, got %q; e.g. server: 127.0.0.1:53", port)
		}
	}
	if c.DNS.Timeout <= 0 {
		add("dns.timeout", "must be greater than 0, got %d; set it in seconds, e.g. timeout: 2", c.DNS.Timeout)
	}
	if c.DNS.CacheEntries < 0 {
		add("dns.cache_entries", "must be 0 (no cache) or more, got %d; e.g. cache_entries: 10000", c.DNS.CacheEntries)
	}
	return errors.Join(errs...)
}

// newSenderAuth builds the checker and its caching resolver, shared by all
// sessions of the receiver, with the self-metrics wired in.
func (r *smtpReceiver) newSenderAuth() (*senderauth.Checker, *senderauth.DNS, error) {
	c := r.cfg.SenderAuth
	obs := r.senderAuthObserver()
	dns, err := senderauth.NewDNS(senderauth.DNSConfig{
		Server:       c.DNS.Server,
		Timeout:      time.Duration(c.DNS.Timeout) * time.Second,
		CacheEntries: c.DNS.CacheEntries,
		Observer:     obs,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sender_auth.dns.server: %w; set server: host:port of a resolver", err)
	}
	authservID := c.AuthservID
	if authservID == "" {
		authservID = greetingDomain(r.cfg.Domain)
	}
	return senderauth.NewChecker(senderauth.Config{
		SPF:               slices.Contains(c.Checks, checkSPF),
		DKIM:              slices.Contains(c.Checks, checkDKIM),
		DMARC:             slices.Contains(c.Checks, checkDMARC),
		Timeout:           time.Duration(c.Timeout) * time.Second,
		MaxDKIMSignatures: c.MaxDKIMSignatures,
		Discovery:         c.DMARCDiscovery,
		AuthservID:        authservID,
		TrustUpstream:     c.TrustUpstream,
		MaxHeaderBytes:    r.cfg.MaxHeaderBytes,
		CacheEntries:      c.DNS.CacheEntries,
		Observer:          obs,
	}, dns), dns, nil
}

// closeSenderAuth ends the DNS queries still in flight.
func (r *smtpReceiver) closeSenderAuth() {
	if r.senderAuthDNS != nil {
		r.senderAuthDNS.Close()
	}
}

func (r *smtpReceiver) senderAuthObserver() *senderauth.Observer {
	t := r.telemetry
	bg := context.Background()
	// Every set names the receiver, like the other self-metrics, so that
	// two receivers' series do not collide.
	sets := &attrSets{receiver: attribute.String("receiver", r.set.ID.String())}
	return &senderauth.Observer{
		DNSQuery: func(qtype, outcome string) {
			t.SMTPSenderAuthDNSQueries.Add(bg, 1, sets.get("query_type", qtype, "outcome", outcome).add...)
		},
		CacheHit: func(qtype string) {
			t.SMTPSenderAuthCacheHits.Add(bg, 1, sets.get("query_type", qtype).add...)
		},
		ResultCacheHit: func(method string) {
			t.SMTPSenderAuthResultCacheHits.Add(bg, 1, sets.get("method", method).add...)
		},
		Result: func(method, result string) {
			t.SMTPSenderAuthResults.Add(bg, 1, sets.get("method", method, "result", result).add...)
		},
		Duration: func(d time.Duration) {
			t.SMTPSenderAuthDuration.Record(bg, d.Seconds(), sets.get().record...)
		},
		Limited: func(limit string) {
			t.SMTPSenderAuthLimited.Add(bg, 1, sets.get("limit", limit).add...)
		},
	}
}

// attrSets keeps the metric attribute sets built so far: their values come
// from small fixed vocabularies (record types, RFC 8601 results), and the
// hot path then allocates nothing for them: the key is an array, not a
// joined string, and the option lists are built once, so no variadic
// slice is made per measurement.
type attrSets struct {
	receiver attribute.KeyValue
	mu       sync.RWMutex
	m        map[[4]string]measurementOptions
}

type measurementOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// get is the set of the receiver plus at most two key, value pairs.
func (a *attrSets) get(kv ...string) measurementOptions {
	var key [4]string
	if len(kv) > len(key) {
		panic("attrSets: more than two attributes")
	}
	copy(key[:], kv)
	a.mu.RLock()
	v, ok := a.m[key]
	a.mu.RUnlock()
	if ok {
		return v
	}
	list := []attribute.KeyValue{a.receiver}
	for i := 0; i+1 < len(kv); i += 2 {
		list = append(list, attribute.String(kv[i], kv[i+1]))
	}
	set := metric.WithAttributeSet(attribute.NewSet(list...))
	v = measurementOptions{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[[4]string]measurementOptions)
	}
	a.m[key] = v
	return v
}

// startSenderAuth begins the check of a message at MAIL, or returns nil
// when sender authentication is off or this client is skipped without
// trusted upstream results to look for. Call with s.mu held.
func (s *session) startSenderAuth(from string) *senderauth.Check {
	checker := s.r.senderAuth
	if checker == nil || s.remote == nil {
		return nil
	}
	cfg := s.r.cfg.SenderAuth
	ip, _ := netip.AddrFromSlice(s.remote.IP)
	trusted := s.r.limiter.isTrusted(ip.Unmap())
	p := senderauth.Params{
		ClientIP: s.remote.IP,
		Helo:     s.helo,
		MailFrom: from,
		Verify:   !(trusted && cfg.SkipTrustedNetworks) && !(s.authUser != "" && cfg.SkipAuthenticated),
		Trusted:  trusted,
	}
	if !checker.Wanted(p) {
		return nil
	}
	return checker.Start(p)
}

// abortSenderAuth drops the check of a transaction that ended without a
// message. Call with s.mu held.
func (s *session) abortSenderAuth() {
	if s.authCheck != nil {
		s.authCheck.Abort()
		s.authCheck = nil
	}
}

// takeSenderAuth hands the current check to Data, which finishes it.
func (s *session) takeSenderAuth() *senderauth.Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	ck := s.authCheck
	s.authCheck = nil
	return ck
}

// recordSenderAuth is the mailconv hook that finishes the check once the
// whole message has been read, and writes its results on the record.
func recordSenderAuth(ck *senderauth.Check) func(attrs, body pcommon.Map) {
	return func(attrs, body pcommon.Map) {
		if res := ck.Finish(); res != nil {
			res.PutAttributes(attrs)
			res.PutBody(body)
		}
	}
}
