package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// resumeFile remembers the messages a server accepted, one SHA-256 of the
// message bytes per line, so that a second run after an interruption sends
// only the rest. Each line is written (and synced) as soon as the server
// has said 250.
type resumeFile struct {
	f    *os.File
	done map[string]bool
}

func openResume(path string) (*resumeFile, error) {
	r := &resumeFile{done: map[string]bool{}}
	if path == "" {
		return r, nil
	}
	if data, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if id, _, _ := strings.Cut(strings.TrimSpace(line), " "); id != "" {
				r.done[id] = true
			}
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	r.f = f
	return r, nil
}

func messageID(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (r *resumeFile) isDone(id string) bool { return r.done[id] }

// markDone records id with the message's origin, for people reading it.
func (r *resumeFile) markDone(id, origin string) error {
	r.done[id] = true
	if r.f == nil {
		return nil
	}
	w := bufio.NewWriter(r.f)
	fmt.Fprintf(w, "%s %s\n", id, strings.ReplaceAll(origin, "\n", " "))
	if err := w.Flush(); err != nil {
		return err
	}
	return r.f.Sync()
}

func (r *resumeFile) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
