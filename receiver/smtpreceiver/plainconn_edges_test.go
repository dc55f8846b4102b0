package smtpreceiver

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// edgeTransports are the three ways bytes cross plainConn: plain text,
// STARTTLS and implicit TLS.
var edgeTransports = []transport{transports[0], transports[1], transports[5]}

// A command line that is too long, pipelined after a complete command in
// the same write, ends the session only after the earlier command's
// reply: 250, then 500, then the close.
func TestLongLineAfterPipelinedCommand(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, _ := tr.start(t, func(c *Config) { c.MaxLineLength = 512 })
			c.send("NOOP\r\nRSET\r\nNOOP " + strings.Repeat("x", 600) + "\r\n")
			assert.Equal(t, "250 2.0.0 OK", c.reply())
			assert.Equal(t, "250 2.0.0 Session reset", c.reply())
			assert.Equal(t, "500 5.4.0 Too long line, closing connection", c.reply())
			assertNothingMore(t, c)
		})
	}
}

// The reply that ends a session (here the 421 after too many failed
// AUTHs) is the last the client hears, even when it pipelined more
// commands behind it that go-smtp had already read.
func TestClosingReplyIsTheLast(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, _ := tr.start(t, func(c *Config) {
				c.Username, c.Password = "mailuser", "secret"
				c.MaxAuthFailures = 1
			})
			c.send("NOOP\r\nAUTH PLAIN " + plainIR("", "mailuser", "wrong") + "\r\nNOOP\r\nMAIL FROM:<a@example.com>\r\n")
			assert.Equal(t, "250 2.0.0 OK", c.reply())
			assert.Equal(t, "421 4.7.0 Too many authentication failures, closing connection", c.reply())
			assertNothingMore(t, c)
		})
	}
}
