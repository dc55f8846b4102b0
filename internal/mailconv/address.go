package mailconv

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// addr is one parsed mailbox of an address header.
type addr struct {
	name    string
	address string
}

var addressParser = mail.AddressParser{WordDecoder: wordDecoder}

// parseAddressList parses an address header value (raw, not yet RFC 2047
// decoded, because decoding first could inject commas or angle brackets).
// When strict parsing fails, every "<x@y>" or bare "x@y" is salvaged so a
// sloppy header still yields its addresses.
func parseAddressList(name, raw string, errs *errorList) []addr {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	if !utf8.ValidString(raw) {
		raw = latin1(raw)
		errs.addf("header %s: 8-bit bytes without charset, decoded as ISO-8859-1", name)
	}
	if list, err := addressParser.ParseList(raw); err == nil {
		out := make([]addr, 0, len(list))
		for _, a := range list {
			out = append(out, addr{name: valid(a.Name), address: valid(a.Address)})
		}
		return out
	}
	errs.addf("header %s: unparsable address list %q", name, snippet([]byte(raw)))
	var out []addr
	for _, m := range looseAddress.FindAllStringSubmatch(raw, 50) {
		a := m[1]
		if a == "" {
			a = m[2]
		}
		out = append(out, addr{address: valid(a)})
	}
	if len(out) == 0 && localPartOnly.MatchString(raw) {
		// Bounces come "From: MAILER-DAEMON" (a local part without a
		// domain): keep it, it says who sent the mail.
		out = append(out, addr{address: valid(raw)})
	}
	return out
}

var localPartOnly = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_{|}~.-]+$`)

var looseAddress = regexp.MustCompile(`<([^<>\s]+@[^<>\s]+)>|([^\s<>,;:"()]+@[^\s<>,;:"()]+)`)

func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// msgIDs extracts message identifiers without angle brackets. Identifiers
// not in angle brackets (seen from broken mailers) are split on whitespace.
func msgIDs(raw string) []string {
	var ids []string
	rest := raw
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" {
			ids = append(ids, valid(id))
		}
		rest = rest[i+j+1:]
	}
	if len(ids) == 0 {
		for _, f := range strings.Fields(raw) {
			ids = append(ids, valid(trimAngles(f)))
		}
	}
	return ids
}
