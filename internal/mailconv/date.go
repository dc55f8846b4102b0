package mailconv

import (
	"net/mail"
	"strings"
	"time"
)

// obsoleteZones are the zone names RFC 5322 section 4.3 still defines.
// Go's parser gives any zone name it does not know from the host's own
// time zone an offset of zero, so "PDT" would silently become UTC, or
// something else on a host in that zone. (Military one-letter zones are
// left as parsed: RFC 5322 says to treat them as -0000, their use having
// been inconsistent.)
var obsoleteZones = map[string]int{
	"UT": 0, "GMT": 0,
	"EST": -5 * 3600, "EDT": -4 * 3600,
	"CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600,
	"PST": -8 * 3600, "PDT": -7 * 3600,
}

// commonDateLayouts are the Date forms nearly all mail uses. Trying them
// first matters: net/mail tries a long list of layouts, and every miss
// builds an error, which made date parsing a tenth of a small mail's cost.
var commonDateLayouts = []string{
	"Mon, _2 Jan 2006 15:04:05 -0700",
	"Mon, _2 Jan 2006 15:04:05 -0700 (MST)",
}

// parseDate parses a Date header, giving the obsolete US zone names their
// RFC 5322 offsets.
func parseDate(raw string) (time.Time, error) {
	raw = strings.TrimSpace(raw)
	if len(raw) >= 30 && raw[3] == ',' && (raw[len(raw)-5] == '-' || raw[len(raw)-5] == '+' || raw[len(raw)-1] == ')') {
		for _, layout := range commonDateLayouts {
			if d, err := time.Parse(layout, raw); err == nil {
				return d, nil
			}
		}
	}
	d, err := mail.ParseDate(raw)
	if err != nil {
		return d, err
	}
	name, _ := d.Zone()
	if off, ok := obsoleteZones[name]; ok {
		y, mo, day := d.Date()
		h, mi, s := d.Clock()
		d = time.Date(y, mo, day, h, mi, s, d.Nanosecond(), time.FixedZone(name, off))
	}
	return d, nil
}
