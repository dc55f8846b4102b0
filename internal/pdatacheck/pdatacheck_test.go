package pdatacheck

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

func TestInvalidUTF8(t *testing.T) {
	lr := plog.NewLogRecord()
	body := lr.Body().SetEmptyMap()
	body.PutStr("ok", "é")
	lr.Attributes().PutStr("a", "fine")
	if got := InvalidUTF8(lr); got != "" {
		t.Fatalf("clean record: %s", got)
	}
	for name, spoil := range map[string]func(){
		"body value": func() { body.PutEmptySlice("list").AppendEmpty().SetStr("\xff") },
		"body key":   func() { body.PutStr("\xfe", "x") },
		"attribute":  func() { lr.Attributes().PutStr("b", "\xc3") },
	} {
		lr = plog.NewLogRecord()
		body = lr.Body().SetEmptyMap()
		spoil()
		if InvalidUTF8(lr) == "" {
			t.Errorf("%s: invalid UTF-8 not found", name)
		}
	}
}
