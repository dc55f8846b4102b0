package mailconv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDate(t *testing.T) {
	tests := []struct {
		raw  string
		want string // RFC 3339
	}{
		{"Tue, 24 Nov 2026 10:00:00 +0100", "2026-11-24T10:00:00+01:00"},
		{"Tue,  3 Nov 2026 10:00:00 -0500", "2026-11-03T10:00:00-05:00"},
		{"Tue, 3 Nov 2026 10:00:00 -0500", "2026-11-03T10:00:00-05:00"},
		{"Tue, 24 Nov 2026 10:00:00 +0000 (UTC)", "2026-11-24T10:00:00Z"},
		{"  Tue, 24 Nov 2026 10:00:00 +0000  ", "2026-11-24T10:00:00Z"},
		{"24 Nov 2026 10:00 +0000", "2026-11-24T10:00:00Z"},
		{"17 May 24 12:00:00 PDT", "2024-05-17T12:00:00-07:00"},
		{"Fri, 17 May 2024 12:00:00 EST", "2024-05-17T12:00:00-05:00"},
		{"Fri, 17 May 2024 12:00:00 CDT", "2024-05-17T12:00:00-05:00"},
		{"Fri, 17 May 2024 12:00:00 GMT", "2024-05-17T12:00:00Z"},
		{"Fri, 17 May 2024 12:00:00 UT", "2024-05-17T12:00:00Z"},
		{"Fri, 17 May 2024 12:00:00 -0000", "2024-05-17T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := parseDate(tt.raw)
			require.NoError(t, err)
			want, err := time.Parse(time.RFC3339, tt.want)
			require.NoError(t, err)
			assert.True(t, want.Equal(got), "got %s, want %s", got.Format(time.RFC3339), tt.want)
			_, off := got.Zone()
			_, wantOff := want.Zone()
			assert.Equal(t, wantOff, off)
		})
	}
	_, err := parseDate("yesterday at noon")
	assert.Error(t, err)
}
