package senderauth

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"github.com/emersion/go-msgauth/dkim"
)

// dkimRun verifies the signatures of a message while it streams in. The
// key lookups take the check's context, so they end with it.
type dkimRun struct {
	pipe *bufPipe
	done chan struct{}
	max  int
	ctx  context.Context
	// set by the goroutine before done closes
	verifs []*dkim.Verification
	err    error
}

func startDKIM(ctx context.Context, r Resolver, maxSignatures int) *dkimRun {
	// go-msgauth reads 0 as "no limit": never hand it a 0.
	maxSignatures = max(maxSignatures, 1)
	d := &dkimRun{pipe: newBufPipe(), done: make(chan struct{}), max: maxSignatures, ctx: ctx}
	strict := strictResolver{r}
	opts := &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return strict.LookupTXT(ctx, name) },
		MaxVerifications: maxSignatures,
	}
	stop := context.AfterFunc(ctx, func() { d.pipe.CloseRead(ctx.Err()) })
	go func() {
		defer close(d.done)
		defer stop()
		d.verifs, d.err = dkim.VerifyWithOptions(d.pipe, opts)
		d.pipe.CloseRead(nil) // the rest of the body is not needed
	}()
	return d
}

// results pairs the library's verifications with the signature fields of
// the header (same order: the library verifies the first ones), adding
// the selector and algorithm the library does not report. Unless it
// finished in time and read the message to the end, none of its verdicts
// is used.
func (d *dkimRun) results(sigFields []string, finished bool) *DKIMResults {
	checked := min(len(sigFields), d.max)
	out := &DKIMResults{Ignored: len(sigFields) - checked}
	trusted := finished && (d.err == nil || errors.Is(d.err, dkim.ErrTooManySignatures))
	for i, field := range sigFields[:checked] {
		sig := signatureOf(field)
		switch {
		case !finished:
			sig.Result, sig.Reason = "temperror", "check timed out"
		case trusted && i < len(d.verifs) && d.verifs[i] != nil:
			sig.Result, sig.Reason = dkimResultOf(d.verifs[i].Err, field)
		default:
			sig.Result, sig.Reason = d.unreadableResult()
		}
		out.Signatures = append(out.Signatures, sig)
	}
	out.Result = dkimSummary(out.Signatures)
	return out
}

// unreadableResult judges a signature the library could not: out of
// time (the check's context ended while it read or looked up) is
// temperror, a message it could not parse is permerror.
func (d *dkimRun) unreadableResult() (string, string) {
	switch {
	case d.ctx.Err() != nil:
		return "temperror", "check timed out"
	case d.err != nil:
		return "permerror", d.err.Error()
	}
	return "permerror", "not verified"
}

// dkimResultOf maps a verification error onto RFC 8601 (section 2.7.1).
// A signature with l= is refused by the library (an unsigned tail can be
// appended): that is "policy", not a broken signature.
func dkimResultOf(err error, field string) (string, string) {
	switch {
	case err == nil:
		return "pass", ""
	case dkim.IsTempFail(err):
		return "temperror", err.Error()
	case dkim.IsPermFail(err):
		return "permerror", err.Error()
	case hasTag(field, "l"):
		return "policy", err.Error()
	default:
		return "fail", err.Error()
	}
}

func dkimSummary(sigs []DKIMSignature) string {
	if len(sigs) == 0 {
		return "none"
	}
	for _, s := range sigs {
		if s.Result == "pass" {
			return "pass"
		}
	}
	return sigs[0].Result
}

// signatureOf reads the tags of a DKIM-Signature value a record shows.
func signatureOf(field string) DKIMSignature {
	sig := DKIMSignature{
		Domain:    strings.ToLower(tagValue(field, "d")),
		Selector:  tagValue(field, "s"),
		Algorithm: strings.ToLower(tagValue(field, "a")),
	}
	sig.Identifier = tagValue(field, "i")
	if sig.Identifier == "" && sig.Domain != "" {
		sig.Identifier = "@" + sig.Domain
	}
	return sig
}

func hasTag(field, tag string) bool {
	_, ok := findTag(field, tag)
	return ok
}

// tagValue is the value of a tag in a "k=v; k=v" list (RFC 6376 section
// 3.2), whitespace removed; "" when absent. Of a tag given twice the last
// counts; a malformed pair is skipped. Only the asked tag's value is
// copied: the others include b= and bh=, the longest.
func tagValue(s, tag string) string {
	v, _ := findTag(s, tag)
	if strings.IndexFunc(v, unicode.IsSpace) < 0 {
		return v
	}
	return strings.Join(strings.Fields(v), "")
}

func findTag(s, tag string) (value string, found bool) {
	for pair := range strings.SplitSeq(s, ";") {
		k, v, ok := strings.Cut(pair, "=")
		if ok && strings.TrimSpace(k) == tag {
			value, found = v, true
		}
	}
	return strings.TrimSpace(value), found
}
