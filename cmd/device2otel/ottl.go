package main

import (
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// The smtp receiver puts every message into a log record whose body is a map;
// body["headers"] maps a header name to the list of its values. The receiver
// writes header names in canonical form (X-SPAM-FLAG and x-spam-flag both
// become X-Spam-Flag), so one spelling per header is enough here.

// header is the OTTL path of the values of a header.
func header(name string) string {
	return fmt.Sprintf(`log.body["headers"][%s]`, strconv.Quote(textproto.CanonicalMIMEHeaderKey(name)))
}

// isMapGuard keeps the conditions quiet for records whose body is not a map
// (body_format: json): without it every such record would log an error.
const isMapGuard = `IsMap(log.body)`

// spamConditions are the filter processor's log_conditions for spam_filter:
// a record is dropped when any condition is true.
func spamConditions(threshold float64) []string {
	// X-Spam-Flag: YES (SpamAssassin, Amavis, most scanners).
	flag := header("X-Spam-Flag")
	// X-Spam-Status: Yes, score=7.1 required=5.0 ... (SpamAssassin).
	status := header("X-Spam-Status")
	// X-Spam-Score: 7.1 (Amavis, rspamd and others): a number above the
	// threshold. The number is taken from the start of the value, so "7.1",
	// " 7.1" and "7.1 (spam)" all count.
	score := header("X-Spam-Score")
	const number = `[[:space:]]*(?P<score>[-+]?[0-9]+([.][0-9]+)?)`
	return []string{
		fmt.Sprintf(`%s and %s != nil and IsMatch(%s[0], "^(?i)[[:space:]]*yes")`, isMapGuard, flag, flag),
		fmt.Sprintf(`%s and %s != nil and IsMatch(%s[0], "^(?i)[[:space:]]*yes([[:space:],;]|$)")`, isMapGuard, status, status),
		fmt.Sprintf(`%s and %s != nil and IsMatch(%s[0], "^%s") and Double(ExtractPatterns(%s[0], "^%s")["score"]) > %s`,
			isMapGuard, score, score, number, score, number, formatFloat(threshold)),
	}
}

// formatFloat writes a float as an OTTL float literal (always with a point).
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// parserStatements are the transform processor's log_statements for
// email_parser. The receiver has already parsed the MIME structure and set
// email.subject, email.from.address, email.message_id, email.x_mailer, ...;
// these statements lift more of the headers into attributes.
func parserStatements() []string {
	var out []string
	// firstOf sets attr from the first value of a header.
	firstOf := func(attr, name string) {
		h := header(name)
		out = append(out, fmt.Sprintf(`set(log.attributes[%q], %s[0]) where log.attributes[%q] == nil and %s and %s != nil`,
			attr, h, attr, isMapGuard, h))
	}

	// Sender domain, from the From header and from the envelope (MAIL FROM).
	// The receiver writes email.from.address as a list (a From header may
	// name several authors); the first author counts. A plain string, as
	// other sources may write it, works too.
	const domain = `@(?P<domain>[^@>[:space:]]+)`
	from := `log.attributes["email.from.address"]`
	out = append(out,
		fmt.Sprintf(`set(log.attributes["email.from.domain"], ToLowerCase(ExtractPatterns(%s[0], %q)["domain"])) where IsList(%s) and Len(%s) > 0 and IsMatch(%s[0], %q)`, from, domain, from, from, from, domain),
		fmt.Sprintf(`set(log.attributes["email.from.domain"], ToLowerCase(ExtractPatterns(%s, %q)["domain"])) where IsString(%s) and IsMatch(%s, %q)`, from, domain, from, from, domain),
		fmt.Sprintf(`set(log.attributes["smtp.mail_from.domain"], ToLowerCase(ExtractPatterns(log.attributes["smtp.mail_from"], %q)["domain"])) where IsString(log.attributes["smtp.mail_from"]) and IsMatch(log.attributes["smtp.mail_from"], %q)`, domain, domain),
	)

	// The mail client is not set here: the receiver already sets
	// email.x_mailer from X-Mailer, else User-Agent.

	// Mailing list: List-Id "Name <list.example.org>" -> list.example.org.
	firstOf("email.list_id", "List-Id")
	out = append(out,
		`set(log.attributes["email.list_id"], ExtractPatterns(log.attributes["email.list_id"], "<(?P<id>[^>]+)>")["id"]) where IsMatch(log.attributes["email.list_id"], "<[^>]+>")`,
	)

	// Received: the first (topmost) header is the last hop, the one that
	// handed the message to this server; count the hops too.
	firstOf("email.received.first", "Received")
	out = append(out,
		`set(log.attributes["email.received.from"], ExtractPatterns(log.attributes["email.received.first"], "^[[:space:]]*(?i)from[[:space:]]+(?P<host>[^[:space:];()]+)")["host"]) where IsMatch(log.attributes["email.received.first"], "^[[:space:]]*(?i)from[[:space:]]+[^[:space:];()]")`,
	)
	received := header("Received")
	out = append(out, fmt.Sprintf(`set(log.attributes["email.received.count"], Len(%s)) where log.attributes["email.received.count"] == nil and %s and %s != nil`,
		received, isMapGuard, received))

	// Automated mail: Auto-Submitted (RFC 3834) and Precedence.
	firstOf("email.auto_submitted", "Auto-Submitted")
	firstOf("email.precedence", "Precedence")
	out = append(out,
		`set(log.attributes["email.automated"], true) where IsMatch(log.attributes["email.auto_submitted"], "^(?i)[[:space:]]*auto-") or IsMatch(log.attributes["email.precedence"], "^(?i)[[:space:]]*(bulk|list|junk)")`,
	)
	return out
}
