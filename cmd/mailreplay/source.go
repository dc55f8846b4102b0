package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxMessageBytes bounds one message read from a source; a larger one is
// reported as failed instead of exhausting memory.
const maxMessageBytes = 64 << 20

// message is one mail to replay.
type message struct {
	origin string // "file.mbox#3", "Maildir/cur/1234:2,S", "x.eml"
	sender string // envelope sender from the mbox "From " line, "" if none
	data   []byte
	err    error // the message could not be read
}

// collectPaths expands the arguments into the files to read, in a stable
// order: a Maildir folder (cur/ and new/) gives its messages, another
// folder its mbox and .eml files, recursively.
func collectPaths(args []string) ([]string, error) {
	var files []string
	for _, arg := range args {
		fi, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, arg)
			continue
		}
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "tmp" && isMaildir(filepath.Dir(path)) {
					return filepath.SkipDir // messages being delivered
				}
				return nil
			}
			if inMaildir(path) || isMailFile(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// inMaildir: a file in cur/ or new/ of a Maildir is one message.
func inMaildir(path string) bool {
	dir := filepath.Base(filepath.Dir(path))
	return (dir == "cur" || dir == "new") && isMaildir(filepath.Dir(filepath.Dir(path)))
}

// isMailFile: .eml files, and files that start like an mbox.
func isMailFile(path string) bool {
	if strings.EqualFold(filepath.Ext(path), ".eml") {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 5)
	n, _ := io.ReadFull(f, head)
	return string(head[:n]) == "From "
}

// readFile calls yield with each message of one file: an mbox when it
// starts with "From ", a single message otherwise. yield returns false to
// stop.
func readFile(path string, yield func(message) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(5)
	if string(head) == "From " {
		return readMbox(br, path, yield)
	}
	data, err := io.ReadAll(io.LimitReader(br, maxMessageBytes+1))
	if err != nil {
		return err
	}
	m := message{origin: path, data: data}
	if len(data) > maxMessageBytes {
		m.data, m.err = nil, fmt.Errorf("larger than %d bytes", maxMessageBytes)
	}
	yield(m)
	return nil
}

// readMbox splits an mbox on lines starting with "From " (the separator
// line is not part of the message) and undoes the mboxrd quoting of
// ">From " lines. It streams: one message is in memory at a time.
func readMbox(br *bufio.Reader, path string, yield func(message) bool) error {
	var cur *message
	var buf bytes.Buffer
	index := 0
	emit := func() bool {
		if cur == nil {
			return true
		}
		cur.data = bytes.Clone(buf.Bytes())
		if buf.Len() > maxMessageBytes {
			cur.data, cur.err = nil, fmt.Errorf("larger than %d bytes", maxMessageBytes)
		}
		buf.Reset()
		ok := yield(*cur)
		cur = nil
		return ok
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if bytes.HasPrefix(line, []byte("From ")) {
				if !emit() {
					return nil
				}
				index++
				cur = &message{origin: fmt.Sprintf("%s#%d", path, index), sender: mboxSender(line)}
			} else if cur != nil && buf.Len() <= maxMessageBytes {
				buf.Write(unquoteFrom(line))
			}
		}
		if errors.Is(err, io.EOF) {
			emit()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// mboxSender is the address of a "From sender date" line; MAILER-DAEMON
// and "-" mean the null sender.
func mboxSender(line []byte) string {
	fields := strings.Fields(string(line))
	if len(fields) < 2 || fields[1] == "MAILER-DAEMON" || fields[1] == "-" {
		return ""
	}
	return fields[1]
}

// unquoteFrom removes one '>' from ">From ", ">>From ", ... (mboxrd).
func unquoteFrom(line []byte) []byte {
	trimmed := bytes.TrimLeft(line, ">")
	if len(trimmed) < len(line) && bytes.HasPrefix(trimmed, []byte("From ")) {
		return line[1:]
	}
	return line
}

// headerAddresses reads envelope defaults from the message header:
// Return-Path (or From) for the sender, To and Cc for the recipients.
func headerAddresses(data []byte) (from string, to []string) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return "", nil
	}
	h := msg.Header
	if rp := strings.Trim(strings.TrimSpace(h.Get("Return-Path")), "<>"); rp != "" {
		from = rp
	} else if list, err := h.AddressList("From"); err == nil && len(list) > 0 {
		from = list[0].Address
	}
	for _, field := range []string{"To", "Cc"} {
		if list, err := h.AddressList(field); err == nil {
			for _, a := range list {
				to = append(to, a.Address)
			}
		}
	}
	sort.Strings(to)
	return from, to
}
