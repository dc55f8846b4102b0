package senderauth

import (
	"context"
	"errors"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"
)

// checkSPF evaluates SPF for the MAIL FROM identity, or for the HELO name
// when the reverse path is null (RFC 7208 section 2.4).
func checkSPF(ctx context.Context, r Resolver, ip net.IP, helo, mailFrom string) *SPFResult {
	res := &SPFResult{Scope: ScopeMailFrom, Domain: domainOf(mailFrom)}
	sender := mailFrom
	if mailFrom == "" {
		res.Scope = ScopeHelo
		res.Domain = strings.ToLower(strings.TrimSuffix(helo, "."))
		sender = "postmaster@" + res.Domain
	}
	if res.Domain == "" || strings.HasPrefix(res.Domain, "[") {
		res.Result, res.Reason = "none", "no domain to check"
		return res
	}
	result, err := spf.CheckHostWithSender(ip, helo, sender,
		spf.WithContext(ctx), spf.WithResolver(strictResolver{r}))
	res.Result = string(result)
	if err != nil && !errors.Is(err, spf.ErrNoResult) {
		res.Reason = err.Error()
	}
	return res
}

// domainOf is the lower-cased domain of an address, "" without one.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(addr[at+1:], "<> "), "."))
}

// spfKey is everything an SPF result depends on besides DNS: the client
// address (its bytes as given, 4 or 16 of them), the HELO name and the
// sender (macros may expand %{l}, %{s} and %{h}), exactly as given.
type spfKey struct {
	ip       [16]byte
	ipLen    int
	helo     string
	mailFrom string
}

func spfKeyOf(p Params) spfKey {
	k := spfKey{helo: p.Helo, mailFrom: p.MailFrom}
	k.ipLen = copy(k.ip[:], p.ClientIP)
	return k
}
