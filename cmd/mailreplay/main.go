// Command mailreplay sends the messages of mbox files, Maildir folders and
// .eml files to an SMTP server, one transaction per message: it backfills
// years of DMARC, TLS-RPT, feedback and bounce reports into the smtp
// receiver.
//
//	mailreplay -server 127.0.0.1:2525 -to reports@example.org archive.mbox Maildir/ extra.eml
//
// It shows a progress line, can be rate limited (-rate), remembers what the
// server accepted in a resume file (-resume) so that an interrupted run does
// not resend, and ends with a summary: sent, refused (with the server's
// reply), failed. See docs/reports.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// options are the parsed flags.
type options struct {
	send     sendConfig
	from     string
	to       []string
	rate     float64
	resume   string
	quiet    bool
	paths    []string
	insecure bool
	caFile   string
}

func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (*options, error) {
	fs := flag.NewFlagSet("mailreplay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.send.server, "server", "", "SMTP server host:port (required)")
	fs.StringVar(&o.send.helo, "helo", "mailreplay.localhost", "name sent in EHLO")
	fs.BoolVar(&o.send.startTLS, "starttls", false, "require STARTTLS before sending")
	fs.StringVar(&o.caFile, "ca", "", "PEM file of the CA that signed the server certificate (with -starttls)")
	fs.BoolVar(&o.insecure, "insecure-skip-verify", false, "do not verify the server certificate (tests only)")
	fs.StringVar(&o.send.user, "user", "", "AUTH PLAIN user name; the password is read from $MAILREPLAY_PASSWORD")
	fs.DurationVar(&o.send.timeout, "timeout", 2*time.Minute, "time limit for each SMTP command and for each message's data")
	fs.StringVar(&o.from, "from", "", "envelope sender for every message (default: the mbox From_ line, Return-Path or From)")
	to := fs.String("to", "", "comma-separated envelope recipients for every message (default: the message's To and Cc)")
	fs.Float64Var(&o.rate, "rate", 0, "at most this many messages per second (0: no limit)")
	fs.StringVar(&o.resume, "resume", "", "file listing the messages already accepted; they are skipped and new ones added")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mailreplay -server host:port [flags] <mbox | Maildir | folder | file.eml>...\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.paths = fs.Args()
	switch {
	case o.send.server == "":
		return nil, errors.New("-server is required (host:port of the SMTP receiver)")
	case len(o.paths) == 0:
		return nil, errors.New("name at least one mbox file, Maildir, folder or .eml file")
	case o.rate < 0:
		return nil, errors.New("-rate must be 0 (no limit) or a positive number of messages per second")
	case o.send.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	}
	for _, addr := range strings.Split(*to, ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			o.to = append(o.to, addr)
		}
	}
	o.send.password = getenv("MAILREPLAY_PASSWORD")
	if o.send.user != "" && !o.send.startTLS {
		return nil, errors.New("-user sends a password: use it with -starttls")
	}
	if o.send.startTLS {
		cfg, err := o.clientTLS()
		if err != nil {
			return nil, err
		}
		o.send.tlsConfig = cfg
	}
	return o, nil
}

func (o *options) clientTLS() (*tls.Config, error) {
	host := o.send.server
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = strings.Trim(host[:i], "[]")
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.insecure} //nolint:gosec // opt-in flag for tests
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate in it", o.caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// run is main without the process: it returns the exit code (0 all sent or
// skipped, 1 something refused, failed or interrupted, 2 usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseFlags(args, stderr, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "mailreplay:", err)
		return 2
	}
	files, err := collectPaths(o.paths)
	if err != nil {
		fmt.Fprintln(stderr, "mailreplay:", err)
		return 2
	}
	resume, err := openResume(o.resume)
	if err != nil {
		fmt.Fprintln(stderr, "mailreplay: resume file:", err)
		return 2
	}
	defer resume.Close()

	r := &replay{opts: o, resume: resume, sender: &sender{cfg: o.send}, limiter: newLimiter(o.rate), stdout: stdout}
	if !o.quiet {
		r.progress = progress{w: stderr, total: countMessages(files), start: time.Now(), now: time.Now}
	}
	interrupted := r.all(ctx, files)
	r.sender.quit()
	r.progress.finish()
	r.summary(interrupted)
	if interrupted || r.tally.refused+r.tally.failed > 0 {
		return 1
	}
	return 0
}

// replay is one run.
type replay struct {
	opts     *options
	resume   *resumeFile
	sender   *sender
	limiter  *limiter
	progress progress
	tally    tally
	problems []string // "refused origin: reply", "failed origin: error"
	stdout   io.Writer
}

// all replays every file; it reports whether ctx ended the run early.
func (r *replay) all(ctx context.Context, files []string) bool {
	for _, path := range files {
		err := readFile(path, func(m message) bool {
			if ctx.Err() != nil {
				return false
			}
			r.one(m)
			r.progress.draw(r.tally)
			return true
		})
		if err != nil {
			r.tally.failed++
			r.problems = append(r.problems, fmt.Sprintf("failed  %s: %v", path, err))
		}
		if ctx.Err() != nil {
			return true
		}
	}
	return false
}

func (r *replay) one(m message) {
	if m.err != nil {
		r.fail(m.origin, m.err.Error())
		return
	}
	id := messageID(m.data)
	if r.resume.isDone(id) {
		r.tally.skipped++
		return
	}
	from, to := r.envelope(m)
	if len(to) == 0 {
		r.fail(m.origin, "no recipient: the message has no To or Cc, and -to is not set")
		return
	}
	r.limiter.wait()
	result, detail := r.sender.send(from, to, m.data)
	switch result {
	case outcomeSent:
		r.tally.sent++
		if err := r.resume.markDone(id, m.origin); err != nil {
			r.problems = append(r.problems, fmt.Sprintf("resume file: %v", err))
		}
	case outcomeRefused:
		r.tally.refused++
		r.problems = append(r.problems, fmt.Sprintf("refused %s: %s", m.origin, detail))
	default:
		r.fail(m.origin, detail)
	}
}

func (r *replay) fail(origin, detail string) {
	r.tally.failed++
	r.problems = append(r.problems, fmt.Sprintf("failed  %s: %s", origin, detail))
}

// envelope: the flags win, then the mbox From_ line, then the header.
func (r *replay) envelope(m message) (string, []string) {
	hFrom, hTo := headerAddresses(m.data)
	from := r.opts.from
	if from == "" {
		from = m.sender
	}
	if from == "" {
		from = hFrom
	}
	to := r.opts.to
	if len(to) == 0 {
		to = hTo
	}
	return from, to
}

func (r *replay) summary(interrupted bool) {
	t := r.tally
	fmt.Fprintf(r.stdout, "mailreplay: %d messages: %d sent, %d refused, %d failed, %d skipped (accepted in an earlier run)\n",
		t.done(), t.sent, t.refused, t.failed, t.skipped)
	for _, p := range r.problems {
		fmt.Fprintln(r.stdout, "  "+p)
	}
	if interrupted {
		fmt.Fprintln(r.stdout, "mailreplay: interrupted; run again with the same -resume file to send the rest")
	}
}

// countMessages is the total for the progress line.
func countMessages(files []string) int {
	n := 0
	for _, path := range files {
		_ = readFile(path, func(message) bool { n++; return true })
	}
	return n
}
