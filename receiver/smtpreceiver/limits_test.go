package smtpreceiver

import (
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
)

// TestTransferClock: min_data_rate is judged over whole windows of timeout
// seconds, data_timeout bounds the transfer; the times are given, so
// nothing here depends on the speed of the machine.
func TestTransferClock(t *testing.T) {
	type read struct {
		at    time.Duration // since the transfer began
		bytes int
	}
	every := func(interval time.Duration, bytes, count int) []read {
		var out []read
		for i := 1; i <= count; i++ {
			out = append(out, read{time.Duration(i) * interval, bytes})
		}
		return out
	}
	tests := []struct {
		name    string
		minRate int
		reads   []read
		refused int // index of the read refused as too slow; -1 for none
	}{
		{"fast, over many windows", 256, every(100*time.Millisecond, 600, 100), -1},
		{"slow, refused when the first window ends", 256, every(200*time.Millisecond, 10, 50), 4},
		{"a burst at the end of a quiet window is enough", 256, []read{{900 * time.Millisecond, 0}, {time.Second, 300}}, -1},
		{"exactly the minimum passes", 256, []read{{500 * time.Millisecond, 128}, {time.Second, 128}}, -1},
		{"each window is judged on its own", 256, append(every(100*time.Millisecond, 1000, 10), read{2500 * time.Millisecond, 10}), 10},
		{"min_data_rate 0 never refuses", 0, every(time.Second, 1, 20), -1},
	}
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := transferClock{window: time.Second, limit: time.Hour, minRate: float64(tt.minRate)}
			clock.begin(start)
			refused := -1
			for i, r := range tt.reads {
				if err := clock.count(r.bytes, start.Add(r.at)); err != nil {
					assert.Equal(t, errDataTooSlow, err)
					refused = i
					break
				}
			}
			assert.Equal(t, tt.refused, refused)
		})
	}
}

func TestTransferClockDeadline(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	clock := transferClock{window: 15 * time.Second, limit: 600 * time.Second}
	clock.begin(start)
	end := start.Add(600 * time.Second)
	for _, tc := range []struct {
		name      string
		firedAt   time.Time
		want      *smtp.SMTPError
		deadline  time.Time
		wantCapAt time.Time
	}{
		{"quiet client within data_timeout", start.Add(15 * time.Second), errDataTooSlow, start.Add(15 * time.Second), start.Add(15 * time.Second)},
		{"data_timeout reached", end, errDataTooLong, end.Add(15 * time.Second), end},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, clock.timedOut(tc.firedAt))
			assert.Equal(t, tc.wantCapAt, clock.cap(tc.deadline))
		})
	}
}
