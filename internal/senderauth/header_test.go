package senderauth

import "testing"

// TestHeaderTap: the kept header ends at the first CRLF CRLF or LF LF,
// wherever the writes split it, and is cut at the limit when it has no end.
func TestHeaderTap(t *testing.T) {
	tests := []struct {
		name, in     string
		limit        int
		want         string
		wantComplete bool
		wantOverflow bool
	}{
		{"CRLF", "A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", 100, "A: 1\r\nB: 2\r\n\r\n", true, false},
		{"LF", "A: 1\nB: 2\n\nbody\n\n", 100, "A: 1\nB: 2\n\n", true, false},
		{"LF LF before a later CRLF CRLF", "A: 1\n\nB: 2\r\n\r\n", 100, "A: 1\n\n", true, false},
		{"LF CRLF is no end", "A: 1\n\r\nB: 2\r\n\r\nx", 100, "A: 1\n\r\nB: 2\r\n\r\n", true, false},
		{"empty header", "\r\n\r\nbody", 100, "\r\n\r\n", true, false},
		{"no end yet", "A: 1\r\nB: 2\r\n", 100, "A: 1\r\nB: 2\r\n", false, false},
		{"no end, cut at the limit", "A: 1\r\nB: 2\r\nC: 3\r\n", 10, "A: 1\r\nB: 2", false, true},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 3, 5, len(tt.in)} {
			tap := headerTap{limit: tt.limit}
			for b := []byte(tt.in); len(b) > 0; {
				n := min(len(b), chunk)
				tap.Write(b[:n])
				b = b[n:]
			}
			if string(tap.buf) != tt.want || tap.complete != tt.wantComplete || tap.overflow != tt.wantOverflow {
				t.Errorf("%s, chunks of %d: kept %q complete %v overflow %v; want %q %v %v",
					tt.name, chunk, tap.buf, tap.complete, tap.overflow, tt.want, tt.wantComplete, tt.wantOverflow)
			}
		}
	}
}
