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
	if list, ok := simpleAddressList(raw); ok {
		return list
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

// simpleAddressList parses the address lists nearly all mail carries, as
// net/mail would but without its allocations: comma-separated
// "local@domain", "Display Name <local@domain>" and
// "\"Quoted, Name\" <local@domain>", in printable ASCII, without comments,
// groups, encoded-words or obsolete forms. Anything else is not ok and left
// to net/mail. TestSimpleAddressListMatchesNetMail holds the two together.
func simpleAddressList(raw string) (list []addr, ok bool) {
	if strings.Contains(raw, "=?") {
		return nil, false
	}
	list = make([]addr, 0, 1+strings.Count(raw, ","))
	for s := raw; ; {
		a, rest, ok := simpleMailbox(strings.TrimLeft(s, " "))
		if !ok {
			return nil, false
		}
		list = append(list, a)
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return list, true
		}
		if rest[0] != ',' {
			return nil, false
		}
		s = rest[1:]
	}
}

// simpleMailbox parses one mailbox of simpleAddressList at the start of s.
func simpleMailbox(s string) (a addr, rest string, ok bool) {
	if strings.HasPrefix(s, "\"") {
		end := strings.IndexByte(s[1:], '"') + 1
		if end == 0 || !isQuotedText(s[1:end]) {
			return addr{}, "", false
		}
		a.name = s[1:end]
		rest = strings.TrimLeft(s[end+1:], " ")
	} else {
		i := 0
		for i < len(s) && (isAtext(s[i]) || s[i] == '.' || s[i] == ' ') {
			i++
		}
		phrase := s[:i]
		if i < len(s) && s[i] == '@' && !strings.Contains(phrase, " ") {
			// A bare addr-spec.
			j := i + 1
			for j < len(s) && (isAtext(s[j]) || s[j] == '.') {
				j++
			}
			if !isDotAtom(s[:i]) || !isDotAtom(s[i+1:j]) {
				return addr{}, "", false
			}
			return addr{address: s[:j]}, s[j:], true
		}
		a.name = strings.TrimRight(phrase, " ")
		if strings.Contains(a.name, "  ") {
			return addr{}, "", false // net/mail joins the words with one space
		}
		rest = s[i:]
	}
	// angle-addr = "<" local@domain ">"
	if !strings.HasPrefix(rest, "<") {
		return addr{}, "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return addr{}, "", false
	}
	local, domain, found := strings.Cut(rest[1:end], "@")
	if !found || !isDotAtom(local) || !isDotAtom(domain) {
		return addr{}, "", false
	}
	a.address = rest[1:end]
	return a, rest[end+1:], true
}

// isAtext reports whether c is an RFC 5322 atext character (ASCII only).
func isAtext(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>[]:;@\,".`, rune(c))
}

// isDotAtom reports whether s is a strict RFC 5322 dot-atom: atoms joined
// by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtext(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// isQuotedText reports whether s is the content of a quoted-string without
// escapes: printable ASCII and spaces, no backslash or quote.
func isQuotedText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

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
