package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// tally counts what happened to the messages.
type tally struct {
	sent, refused, failed, skipped int
}

func (t tally) done() int { return t.sent + t.refused + t.failed + t.skipped }

// progress draws one status line on a terminal (or any writer), redrawn in
// place with a carriage return.
type progress struct {
	w     io.Writer
	total int
	start time.Time
	now   func() time.Time
}

const barWidth = 30

func (p *progress) draw(t tally) {
	if p.w == nil {
		return
	}
	done := t.done()
	filled := 0
	if p.total > 0 {
		filled = min(barWidth, done*barWidth/p.total)
	}
	rate := 0.0
	if elapsed := p.now().Sub(p.start).Seconds(); elapsed > 0 {
		rate = float64(t.sent) / elapsed
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d  sent %d  refused %d  failed %d  skipped %d  %.1f msg/s ",
		strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), done, p.total,
		t.sent, t.refused, t.failed, t.skipped, rate)
}

func (p *progress) finish() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}

// limiter spaces messages interval apart.
type limiter struct {
	interval time.Duration
	next     time.Time
	now      func() time.Time
	sleep    func(time.Duration)
}

func newLimiter(perSecond float64) *limiter {
	l := &limiter{now: time.Now, sleep: time.Sleep}
	if perSecond > 0 {
		l.interval = time.Duration(float64(time.Second) / perSecond)
	}
	return l
}

// wait returns when the next message may go.
func (l *limiter) wait() {
	if l.interval == 0 {
		return
	}
	now := l.now()
	if l.next.After(now) {
		l.sleep(l.next.Sub(now))
		now = l.next
	}
	l.next = now.Add(l.interval)
}
