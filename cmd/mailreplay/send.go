package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sendConfig is how to reach the receiver.
type sendConfig struct {
	server    string // host:port
	helo      string
	startTLS  bool
	tlsConfig *tls.Config
	user      string // AUTH PLAIN when set
	password  string
	timeout   time.Duration // per command and for the message data
}

// sender keeps one SMTP connection open across messages and opens a new
// one after a connection error.
type sender struct {
	cfg sendConfig
	c   *smtp.Client
}

// outcome of one message.
type outcome int

const (
	outcomeSent outcome = iota
	outcomeRefused
	outcomeFailed
)

// send delivers one message. A reply refusing it (4xx or 5xx at MAIL,
// RCPT or after the data) is outcomeRefused with that reply; anything else
// going wrong is outcomeFailed.
func (s *sender) send(from string, to []string, data []byte) (outcome, string) {
	if err := s.connect(); err != nil {
		return outcomeFailed, err.Error()
	}
	err := s.transaction(from, to, data)
	if err == nil {
		return outcomeSent, ""
	}
	var reply *smtp.SMTPError
	if errors.As(err, &reply) {
		if reply.Code == 421 || s.c.Reset() != nil {
			s.close() // the server is closing, or the session is unusable
		}
		return outcomeRefused, replyText(reply)
	}
	s.close()
	return outcomeFailed, err.Error()
}

func (s *sender) transaction(from string, to []string, data []byte) error {
	var opts *smtp.MailOptions
	if !isASCII(append([]string{from}, to...)...) {
		opts = &smtp.MailOptions{UTF8: true} // SMTPUTF8 (RFC 6531)
	}
	if err := s.c.Mail(from, opts); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := s.c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	w, err := s.c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

func isASCII(list ...string) bool {
	for _, s := range list {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}

func replyText(e *smtp.SMTPError) string {
	if e.EnhancedCode != (smtp.EnhancedCode{}) && e.EnhancedCode != smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Message)
}

// connect opens the session: greeting, EHLO, STARTTLS and AUTH as
// configured.
func (s *sender) connect() error {
	if s.c != nil {
		return nil
	}
	conn, err := net.DialTimeout("tcp", s.cfg.server, s.cfg.timeout)
	if err != nil {
		return err
	}
	var c *smtp.Client
	if s.cfg.startTLS {
		c, err = smtp.NewClientStartTLS(conn, s.cfg.tlsConfig)
		if err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = s.cfg.timeout
	c.SubmissionTimeout = s.cfg.timeout
	if err := c.Hello(s.cfg.helo); err != nil {
		c.Close()
		return fmt.Errorf("EHLO: %w", err)
	}
	if s.cfg.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.user, s.cfg.password)); err != nil {
			c.Close()
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	s.c = c
	return nil
}

func (s *sender) close() {
	if s.c != nil {
		_ = s.c.Close()
		s.c = nil
	}
}

// quit ends the session politely.
func (s *sender) quit() {
	if s.c != nil {
		_ = s.c.Quit()
		s.close()
	}
}
