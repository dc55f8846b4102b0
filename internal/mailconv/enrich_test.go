package mailconv

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestEnrich: the caller's hook runs once the message is read, and what it
// adds reaches the attributes and the body, JSON-encoded or not; after a
// read error it does not run.
func TestEnrich(t *testing.T) {
	const raw = "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
	enrich := func(seen *int) func(attrs, body pcommon.Map) {
		return func(attrs, body pcommon.Map) {
			*seen++
			attrs.PutStr("email.test", "added")
			body.PutEmptyMap("extra").PutStr("k", "v")
		}
	}
	for _, format := range []string{BodyFormatMap, BodyFormatJSON} {
		calls := 0
		lr := plog.NewLogRecord()
		if _, err := Convert(strings.NewReader(raw), Envelope{Enrich: enrich(&calls)}, Options{BodyFormat: format}, lr); err != nil {
			t.Fatal(err)
		}
		if v, _ := lr.Attributes().Get("email.test"); calls != 1 || v.Str() != "added" {
			t.Fatalf("%s: %d calls, attribute %q", format, calls, v.Str())
		}
		if format == BodyFormatJSON {
			if !strings.Contains(lr.Body().Str(), `"extra":{"k":"v"}`) {
				t.Fatalf("json body lacks the addition: %s", lr.Body().Str())
			}
		} else if _, ok := lr.Body().Map().Get("extra"); !ok {
			t.Fatal("map body lacks the addition")
		}
	}
	calls := 0
	broken := io.MultiReader(strings.NewReader(raw[:20]), iotest.ErrReader(errors.New("connection reset")))
	if _, err := Convert(broken, Envelope{Enrich: enrich(&calls)}, Options{}, plog.NewLogRecord()); err == nil || calls != 0 {
		t.Fatalf("read error: err %v, %d calls", err, calls)
	}
}
