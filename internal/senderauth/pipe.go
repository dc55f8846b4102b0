package senderauth

import (
	"io"
	"sync"
)

// bufPipe hands the bytes of a message to a verifier goroutine without
// ever making the writer (the SMTP session reading DATA) wait: writes are
// queued, and dropped once the reader is done. The queue holds at most
// what the reader has not consumed yet, so it is bounded by the message
// size limit of the session.
type bufPipe struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queue    [][]byte
	closed   bool  // no more writes
	readDone bool  // reader gone: drop writes
	readErr  error // returned to the reader after CloseRead
}

func newBufPipe() *bufPipe {
	p := &bufPipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *bufPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readDone || p.closed || len(b) == 0 {
		return len(b), nil
	}
	p.queue = append(p.queue, append([]byte(nil), b...))
	p.cond.Signal()
	return len(b), nil
}

// CloseWrite ends the stream: the reader sees io.EOF after the queue.
func (p *bufPipe) CloseWrite() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.cond.Broadcast()
}

// CloseRead makes the reader's next Read fail with err (io.EOF when nil)
// and drops what is queued and whatever is written later.
func (p *bufPipe) CloseRead(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		err = io.EOF
	}
	if !p.readDone {
		p.readDone, p.readErr = true, err
	}
	p.queue = nil
	p.cond.Broadcast()
}

func (p *bufPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) == 0 && !p.closed && !p.readDone {
		p.cond.Wait()
	}
	if p.readDone {
		return 0, p.readErr
	}
	if len(p.queue) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.queue[0])
	if n == len(p.queue[0]) {
		p.queue[0] = nil
		p.queue = p.queue[1:]
	} else {
		p.queue[0] = p.queue[0][n:]
	}
	return n, nil
}
