package mailconv

import (
	"net/mail"
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

// parseDate parses a Date header, giving the obsolete US zone names their
// RFC 5322 offsets.
func parseDate(raw string) (time.Time, error) {
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
