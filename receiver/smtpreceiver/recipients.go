package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-smtp"
)

// errUnknownRecipient refuses a recipient outside accepted_recipients.
var errUnknownRecipient = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such recipient here"}

// recipientFilter is accepted_recipients: exact addresses and *@domain
// patterns, compared case-insensitively. A nil filter accepts everyone, so
// that a receiver without the option behaves as before.
type recipientFilter struct {
	addresses map[string]struct{}
	domains   map[string]struct{}
}

// newRecipientFilter builds the filter from validated patterns; nil when
// there are none.
func newRecipientFilter(patterns []string) *recipientFilter {
	if len(patterns) == 0 {
		return nil
	}
	f := &recipientFilter{addresses: map[string]struct{}{}, domains: map[string]struct{}{}}
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		if domain, ok := strings.CutPrefix(p, "*@"); ok {
			f.domains[domain] = struct{}{}
		} else {
			f.addresses[p] = struct{}{}
		}
	}
	return f
}

// accepts says whether RCPT TO:<addr> is one of ours.
func (f *recipientFilter) accepts(addr string) bool {
	if f == nil {
		return true
	}
	addr = strings.ToLower(addr)
	if _, ok := f.addresses[addr]; ok {
		return true
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	_, ok := f.domains[addr[at+1:]]
	return ok
}

// validateRecipientPattern checks one accepted_recipients entry: a full
// address (local@domain) or *@domain.
func validateRecipientPattern(p string) error {
	local, domain, ok := strings.Cut(strings.TrimSpace(p), "@")
	switch {
	case !ok || local == "" || domain == "":
		return fmt.Errorf("%q is not an address or *@domain pattern, e.g. dmarc@example.org or *@example.org", p)
	case strings.Contains(domain, "@") || strings.ContainsAny(p, " \t<>"):
		return fmt.Errorf("%q is not an address or *@domain pattern (no spaces, angle brackets or second @), e.g. dmarc@example.org", p)
	case strings.Contains(local, "*") && local != "*", strings.Contains(domain, "*"):
		return fmt.Errorf("%q: the only wildcard is a whole local part, as in *@example.org", p)
	}
	return nil
}

// openSinkWarning says why a receiver reachable from other hosts takes
// mail for anyone: it listens beyond loopback with neither AUTH nor
// accepted_recipients. Empty when that is not the case.
func openSinkWarning(cfg *Config, ln net.Addr) string {
	if cfg.authEnabled() || len(cfg.AcceptedRecipients) > 0 {
		return ""
	}
	if ta, ok := ln.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return ""
	}
	return "the receiver listens on " + ln.String() + " with neither AUTH nor accepted_recipients: it accepts mail for any recipient from anyone who reaches it; " +
		"set accepted_recipients (e.g. [dmarc@example.org, \"*@alerts.example.org\"]) or username/password"
}
