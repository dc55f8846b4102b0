// Package pdatacheck holds checks that the tests of the pure converters
// (internal/mailconv, internal/reports) share.
package pdatacheck

import (
	"fmt"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// InvalidUTF8 describes the first string (key or value) of the record's
// body or attributes that is not valid UTF-8, which pdata must not carry;
// "" when there is none.
func InvalidUTF8(lr plog.LogRecord) string {
	if bad := invalidIn("body", lr.Body()); bad != "" {
		return bad
	}
	bad := ""
	lr.Attributes().Range(func(k string, v pcommon.Value) bool {
		if !utf8.ValidString(k) {
			bad = fmt.Sprintf("attribute key %q", k)
		} else {
			bad = invalidIn(k, v)
		}
		return bad == ""
	})
	return bad
}

func invalidIn(path string, v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if !utf8.ValidString(v.Str()) {
			return fmt.Sprintf("%s: %q", path, v.Str())
		}
	case pcommon.ValueTypeMap:
		bad := ""
		v.Map().Range(func(k string, mv pcommon.Value) bool {
			if !utf8.ValidString(k) {
				bad = fmt.Sprintf("%s: key %q", path, k)
			} else {
				bad = invalidIn(path+"."+k, mv)
			}
			return bad == ""
		})
		return bad
	case pcommon.ValueTypeSlice:
		for i := 0; i < v.Slice().Len(); i++ {
			if bad := invalidIn(path+"[]", v.Slice().At(i)); bad != "" {
				return bad
			}
		}
	}
	return ""
}
