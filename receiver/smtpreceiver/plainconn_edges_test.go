package smtpreceiver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
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

// QUIT with commands pipelined behind it: 221 is the last reply.
func TestQuitIsTheLastReply(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, _ := tr.start(t, nil)
			c.send("NOOP\r\nQUIT\r\nNOOP\r\nMAIL FROM:<a@example.com>\r\n")
			assert.Equal(t, "250 2.0.0 OK", c.reply())
			assert.Equal(t, "221 2.0.0 Bye", c.reply())
			assertNothingMore(t, c)
		})
	}
}

// bodyOf is the message body a record keeps.
func bodyOf(t *testing.T, sink *consumertest.LogsSink, i int) string {
	t.Helper()
	recs := records(sink)
	require.Greater(t, len(recs), i)
	body, _ := recs[i].Body().Map().AsRaw()["body"].(string)
	return body
}

// Commands pipelined right behind the end of a DATA body, in the same
// write, are answered in order after the message; a RCPT TO:<postmaster>
// among them is rewritten, while the same lines inside a message are
// message text, untouched.
func TestCommandsAfterBodyInOnePacket(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, func(c *Config) { c.Domain = "mx.example.org" })
			c.openData()
			c.send(dotTerminated(simpleMessage) + "RSET\r\nNOOP\r\nEHLO again.example.com\r\n" +
				"MAIL FROM:<a@example.com>\r\nRCPT TO:<postmaster>\r\nDATA\r\n")
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			assert.Equal(t, "250 2.0.0 Session reset", c.reply())
			assert.Equal(t, "250 2.0.0 OK", c.reply())
			assert.True(t, strings.HasPrefix(c.reply(), "250-"), "EHLO")
			assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
			assert.Equal(t, "250 2.1.5 Recipient OK", c.reply())
			require.True(t, strings.HasPrefix(c.reply(), "354 "))
			c.send(dotTerminated("Subject: second\r\n\r\nSTARTTLS\r\nRCPT TO:<postmaster>\r\n..DATA\r\n") + "NOOP\r\n")
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			assert.Equal(t, "250 2.0.0 OK", c.reply())

			require.Len(t, records(sink), 2)
			to, _ := records(sink)[1].Attributes().Get("smtp.rcpt_to")
			assert.Equal(t, []any{"postmaster@mx.example.org"}, to.Slice().AsRaw())
			assert.Equal(t, "STARTTLS\nRCPT TO:<postmaster>\n.DATA\n", bodyOf(t, sink, 1))
		})
	}
}

// BDAT chunks pipelined with MAIL and RCPT, and commands behind the last
// chunk in the same write: chunk bytes are message, never commands (no
// STARTTLS, no postmaster rewrite, no DATA), and the commands after the
// last chunk are served in order.
func TestBDATPipelinedWithCommands(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, func(c *Config) { c.Domain = "mx.example.org" })
			chunk1 := "Subject: chunks\r\n\r\nSTARTTLS\r\n"
			chunk2 := "RCPT TO:<postmaster>\r\nDATA\r\n"
			c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<postmaster>\r\n" +
				"BDAT " + strconv.Itoa(len(chunk1)) + "\r\n" + chunk1 +
				"BDAT " + strconv.Itoa(len(chunk2)) + " LAST\r\n" + chunk2 +
				"NOOP\r\nRCPT TO:<postmaster>\r\nQUIT\r\n")
			assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
			assert.Equal(t, "250 2.1.5 Recipient OK", c.reply())
			assert.Equal(t, "250 2.0.0 Continue", c.reply())
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			assert.Equal(t, "250 2.0.0 OK", c.reply())
			assert.Equal(t, "502 5.5.1 Missing MAIL FROM command.", c.reply(), "the transaction is over")
			assert.Equal(t, "221 2.0.0 Bye", c.reply())
			assertNothingMore(t, c)

			require.Len(t, records(sink), 1)
			assert.Equal(t, "STARTTLS\nRCPT TO:<postmaster>\nDATA\n", bodyOf(t, sink, 0))
		})
	}
}

// A DATA refused for want of a recipient, with a body pipelined behind it
// anyway: what follows is commands (RFC 2920 3.1: the client should have
// waited), answered in order, and nothing is recorded.
func TestRefusedDataWithBodyPipelined(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, func(c *Config) { c.AcceptedRecipients = []string{"b@example.com"} })
			c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@example.net>\r\nDATA\r\nRSET\r\nNOOP\r\n.\r\n")
			assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
			assert.True(t, strings.HasPrefix(c.reply(), "550 "))
			assert.Equal(t, "502 5.5.1 Missing RCPT TO command.", c.reply())
			assert.Equal(t, "250 2.0.0 Session reset", c.reply())
			assert.Equal(t, "250 2.0.0 OK", c.reply())
			assert.Equal(t, "501 5.5.2 Bad command", c.reply())
			c.expect("NOOP", "250 2.0.0 OK")
			assert.Empty(t, records(sink))
		})
	}
}

// STARTTLS right behind a message, in the same write, is taken once the
// message is answered (the transaction is over); while a new transaction
// is open it is refused; what the client pipelined behind an accepted
// STARTTLS in plain text is dropped, not run inside TLS.
func TestSTARTTLSAfterBodyInOnePacket(t *testing.T) {
	cfg, clientTLS := secureConfig(t, func(c *Config) { c.Username, c.Password = "", "" })
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	c := dial(t, r.addr())
	c.expect("EHLO outside.example.com", "250")
	c.openData()
	c.send(dotTerminated(simpleMessage) + "MAIL FROM:<a@example.com>\r\nSTARTTLS\r\n")
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
	assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
	assert.Equal(t, "503 5.5.1 STARTTLS not allowed during a mail transaction", c.reply())
	c.expect("RCPT TO:<b@example.com>", "250 ")
	c.expect("DATA", "354 ")
	c.send(dotTerminated(simpleMessage) + "STARTTLS\r\nNOOP\r\nMAIL FROM:<injected@example.com>\r\n")
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
	assert.Equal(t, "220 2.0.0 Ready to start TLS", c.reply())
	tc := tls.Client(c.conn, clientTLS)
	require.NoError(t, tc.Handshake())
	c.conn, c.rd = tc, bufio.NewReader(tc)
	ehlo := c.cmd("EHLO inside.example.com")
	assert.True(t, strings.HasPrefix(ehlo, "250-"), "the first reply inside TLS is EHLO's, not a plain-text command's: %q", ehlo)
	require.Equal(t, "250 2.0.0 OK: queued", c.sendMail("a@example.com", []string{"b@example.com"}, simpleMessage))
	c.expect("NOOP", "250 2.0.0 OK")

	recs := records(sink)
	require.Len(t, recs, 3)
	assert.NotContains(t, recs[1].Attributes().AsRaw(), "tls.protocol.version")
	assert.Contains(t, recs[2].Attributes().AsRaw(), "tls.protocol.version")
	assert.Equal(t, "inside.example.com", recs[2].Attributes().AsRaw()["smtp.helo"])
	from, _ := recs[2].Attributes().Get("smtp.mail_from")
	assert.Equal(t, "a@example.com", from.AsString())
}

// sendInPieces writes s a few bytes at a time.
func sendInPieces(c *rawClient, s string, size int) {
	for len(s) > size {
		c.send(s[:size])
		s = s[size:]
	}
	c.send(s)
}

// A DATA message of exactly max_message_bytes arriving in many small
// writes is accepted, one byte more is refused with 552, and in both cases
// the next transaction, pipelined in the write that ends the body, is
// served.
func TestMessageSizeLimitInSmallWrites(t *testing.T) {
	const limit = 2000
	const head = "Subject: pieces\r\n\r\n"
	message := func(size int) string {
		return head + strings.Repeat(".b\r\n", (size-len(head))/4)
	}
	next := "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, func(c *Config) { c.MaxMessageBytes = limit })
			c.openData()
			var accepted string
			for _, tc := range []struct {
				size int
				want string
			}{{limit, "250 2.0.0 OK: queued"}, {limit + 1, "552 5.3.4 Maximum message size exceeded"}} {
				msg := message(tc.size - 1)
				msg = msg[:len(msg)-2] + "bb\r\n"[4-(tc.size-len(msg)+2):]
				require.Len(t, msg, tc.size)
				if tc.size == limit {
					accepted = msg
				}
				body := dotTerminated(strings.ReplaceAll(msg, "\r\n.", "\r\n.."))
				sendInPieces(c, body[:len(body)-3], 7)
				c.send(body[len(body)-3:] + next)
				assert.Equal(t, tc.want, c.reply(), "size %d", tc.size)
				assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
				assert.Equal(t, "250 2.1.5 Recipient OK", c.reply())
				require.True(t, strings.HasPrefix(c.reply(), "354 "))
			}
			c.send(dotTerminated(simpleMessage))
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			require.Len(t, records(sink), 2)
			assert.Equal(t, strings.ReplaceAll(accepted[len(head):], "\r\n", "\n"), bodyOf(t, sink, 0), "unstuffed")
		})
	}
}

// openConns is how many connections the receiver holds open.
func openConns(r *smtpReceiver) int {
	r.conns.mu.Lock()
	defer r.conns.mu.Unlock()
	return len(r.conns.conns)
}

// A client that leaves in the middle of a DATA body, or of its end
// marker, leaves no record, and its connection is released.
func TestClientGoneMidBody(t *testing.T) {
	for _, tr := range edgeTransports {
		for _, cut := range []string{"Subject: cut\r\n\r\nhalf a li", "Subject: cut\r\n\r\nline\r\n.\r"} {
			t.Run(tr.name+"/"+strconv.Quote(cut[len(cut)-3:]), func(t *testing.T) {
				r, clientTLS, sink := tr.receiver(t, nil)
				c := tr.connect(t, r, clientTLS)
				c.openData()
				c.send(cut)
				require.Equal(t, 1, openConns(r))
				require.NoError(t, c.conn.Close())
				require.Eventually(t, func() bool { return openConns(r) == 0 }, 10*time.Second, 10*time.Millisecond)
				assert.Empty(t, records(sink))
			})
		}
	}
}

// Dot-stuffing is undone (RFC 5321 4.5.2) over every transport, whatever
// the split of the body into writes; ".\r" at a line start that is not
// the end marker is message text.
func TestDotStuffedBodyEndToEnd(t *testing.T) {
	body := "..leading dot\r\n...\r\n..\r\n.\rnot the end\r\nmid.dle\r\n"
	want := ".leading dot\n..\n.\n\rnot the end\nmid.dle\n"
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, nil)
			for _, piece := range []int{1 << 20, 1, 2, 3} {
				c.openData()
				sendInPieces(c, "Subject: dots\r\n\r\n"+body+".\r\n", piece)
				require.Equal(t, "250 2.0.0 OK: queued", c.reply(), "pieces of %d", piece)
			}
			c.expect("NOOP", "250 2.0.0 OK")
			require.Len(t, records(sink), 4)
			for i := range 4 {
				assert.Equal(t, want, bodyOf(t, sink, i))
			}
		})
	}
}

// A DKIM-signed message whose body has lines starting with "." is
// dot-stuffed on the wire; DKIM hashes the unstuffed body, so it passes.
func TestSenderAuthDotStuffedBody(t *testing.T) {
	srv, key := authZone(t)
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, senderAuthConfig(srv, nil), sink)
	c := dial(t, r.addr())
	c.expect("EHLO mx.example.org", "250")
	signed := signMessage(t, authMessage+".hidden line\r\n..two dots\r\n.\r\n", key)
	c.expect("MAIL FROM:<alice@example.org>", "250 ")
	c.expect("RCPT TO:<bob@example.com>", "250 ")
	c.expect("DATA", "354 ")
	sendInPieces(c, dotStuffed([]byte(signed))+".\r\n", 5)
	require.Equal(t, "250 2.0.0 OK: queued", c.reply())
	attrs := records(sink)[0].Attributes().AsRaw()
	assert.Equal(t, "pass", attrs["email.dkim.result"])
	assert.Equal(t, "pass", attrs["email.dmarc.result"])
}

// Receiver shutdown over every transport: a session waiting for a command
// hears 421 at once; one in the middle of DATA finishes its message
// (250) and then hears 421; both connections close.
func TestShutdownOverEveryTransport(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			r, clientTLS, sink := tr.receiver(t, nil)
			inData := tr.connect(t, r, clientTLS)
			inData.openData()
			inData.send(simpleMessage[:20])
			idle := tr.connect(t, r, clientTLS)
			idle.expect("MAIL FROM:<a@example.com>", "250 ")

			done := shutdownInBackground(t, r)
			assert.Equal(t, "421 4.3.2 Service shutting down, try again later", idle.reply())
			assertNothingMore(t, idle)
			inData.send(dotTerminated(simpleMessage[20:]))
			assert.Equal(t, "250 2.0.0 OK: queued", inData.reply())
			assert.Equal(t, "421 4.3.2 Service shutting down, try again later", inData.reply())
			assertNothingMore(t, inData)
			<-done
			assert.Len(t, records(sink), 1)
		})
	}
}

// An idle client hears 421 over every transport, also while a line start
// plainConn keeps back (it may become RCPT TO:<postmaster>) waits for
// the rest of its line.
func TestIdleTimeoutOverEveryTransport(t *testing.T) {
	for _, tr := range edgeTransports {
		for _, partial := range []string{"", "RCPT TO:<postm"} {
			t.Run(tr.name+"/"+partial, func(t *testing.T) {
				c, _ := tr.start(t, func(c *Config) { c.Timeout = 1 })
				c.expect("MAIL FROM:<a@example.com>", "250 ")
				c.send(partial)
				assert.Equal(t, "421 4.4.2 Idle timeout, closing connection", c.reply())
				assertNothingMore(t, c)
			})
		}
	}
}

// A SASL response line is not a command, even when its base64 starts like
// one: AUTH LOGIN's answer "StartTLS…" (valid base64) reaches the
// authenticator, which refuses it, instead of plainConn taking it for
// STARTTLS.
func TestSASLResponseIsNoCommand(t *testing.T) {
	for _, tr := range edgeTransports[1:] {
		t.Run(tr.name, func(t *testing.T) {
			r, clientTLS, _ := tr.receiver(t, func(c *Config) { c.Username, c.Password = "mailuser", "secret" })
			c := tr.connect(t, r, clientTLS)
			c.expect("AUTH LOGIN", "334 ")
			c.expect(b64("mailuser"), "334 ")
			c.expect("StartTLSdGVzdA==", "535 5.7.8")
			c.expect("AUTH PLAIN", "334 ")
			// Not a PLAIN response (valid base64 without the NULs): refused
			// in the receiver's words, not go-sasl's ("sasl: invalid
			// response").
			c.expect("STARTTLS", "501 5.5.2 Malformed AUTH response")
			c.expect("AUTH PLAIN "+plainIR("", "mailuser", "secret"), "235 ")
		})
	}
}

// feed hands over the complete lines before an over-long one, and fails
// only when the long line comes first; after an AUTH challenge the next
// line is not watched for STARTTLS.
func TestFeedAroundLongLinesAndChallenges(t *testing.T) {
	g := newLineGuard(16)
	g.watchTLS = true
	tooLong := []byte("NOOP " + strings.Repeat("x", 20) + "\r\n")
	k, stop := g.feed(append([]byte("NOOP\r\n"), tooLong...))
	assert.Equal(t, 6, k)
	assert.Equal(t, stopLongLine, stop)
	assert.False(t, g.failed)
	_, _ = g.feed(tooLong)
	assert.True(t, g.failed)

	g = newLineGuard(512)
	g.watchTLS = true
	_, stop = g.feed([]byte("STARTTLS\r\n"))
	assert.Equal(t, stopStartTLS, stop)
	g.replied([]byte("334 \r\n"))
	k, stop = g.feed([]byte("STARTTLS\r\nSTARTTLS\r\n"))
	assert.Equal(t, 10, k, "the SASL response goes to go-smtp, the command after it does not")
	assert.Equal(t, stopStartTLS, stop)
}

// A transfer below min_data_rate ends with one 421 and the close over
// every transport, in DATA and between BDAT bytes alike.
func TestSlowTransferOverEveryTransport(t *testing.T) {
	for _, tr := range edgeTransports[1:] { // plain text: TestSlowDataIsClosed
		for _, mode := range []string{"DATA", "BDAT"} {
			t.Run(tr.name+"/"+mode, func(t *testing.T) {
				c, sink := tr.start(t, func(c *Config) { c.Timeout = 1; c.MinDataRate = 256; c.DataTimeout = 600 })
				trickleTransfer(t, c, mode)
				assert.Empty(t, records(sink))
			})
		}
	}
}

// The domain added to a bare <postmaster> does not count against
// max_line_length: the client's line was within it.
func TestPostmasterRewriteKeepsTheLineLimit(t *testing.T) {
	c, _ := transports[0].start(t, func(c *Config) { c.MaxLineLength = 512; c.Domain = "mx.example.org" })
	c.expect("MAIL FROM:<a@example.com>", "250 ")
	line := "RCPT TO:<postmaster> ORCPT=rfc822;" + strings.Repeat("x", 400) + "@example.org"
	line += strings.Repeat(" ", 512-len(line)-2)
	require.Len(t, line+"\r\n", 512)
	// go-smtp answers the line itself (it does not implement ORCPT).
	c.expect(line, "504 5.5.4 ORCPT is not implemented")
	c.expect("NOOP", "250 ")
}

// A whole transaction in one write, the body sent before the 354 (a
// client that does not wait, against RFC 2920 3.1): the body is kept
// back until DATA is answered, then read as the message.
func TestWholeTransactionInOneWrite(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, nil)
			c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" +
				dotTerminated("Subject: eager\r\n\r\nMAIL FROM:<c@example.com>\r\n..\r\n") + "QUIT\r\n")
			assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
			assert.Equal(t, "250 2.1.5 Recipient OK", c.reply())
			assert.True(t, strings.HasPrefix(c.reply(), "354 "))
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			assert.Equal(t, "221 2.0.0 Bye", c.reply())
			assertNothingMore(t, c)
			require.Len(t, records(sink), 1)
			assert.Equal(t, "MAIL FROM:<c@example.com>\n.\n", bodyOf(t, sink, 0))
		})
	}
}

// A pipeline that does not take a message: 451 (retryable) or 554
// (permanent) over every transport, and the command pipelined behind the
// body is answered after it.
func TestPipelineErrorThenPipelinedCommand(t *testing.T) {
	for _, tr := range edgeTransports {
		for _, tc := range []struct {
			err  error
			want string
		}{
			{errors.New("queue full at 192.0.2.1:4317"), "451 4.3.0 Temporary failure in the processing pipeline, try again later"},
			{consumererror.NewPermanent(errors.New("bad")), "554 5.3.0 Message rejected by the processing pipeline"},
		} {
			t.Run(tr.name+"/"+tc.want[:3], func(t *testing.T) {
				r, clientTLS := tr.receiverTo(t, nil, &errConsumer{err: tc.err})
				c := tr.connect(t, r, clientTLS)
				c.openData()
				c.send(dotTerminated(simpleMessage) + "NOOP\r\n")
				assert.Equal(t, tc.want, c.reply())
				assert.Equal(t, "250 2.0.0 OK", c.reply())
			})
		}
	}
}

// STARTTLS with a long argument is refused the same way whether it
// arrives in one read or in two (the second case used to reach go-smtp,
// which has no TLS and said "TLS not supported").
func TestSTARTTLSWithLongArgumentSplit(t *testing.T) {
	for _, tr := range edgeTransports[1:] {
		t.Run(tr.name, func(t *testing.T) {
			c, _ := tr.start(t, nil)
			line := "STARTTLS " + strings.Repeat("x", 2*headBytes)
			c.send(line + "\r\n")
			assert.Equal(t, "501 5.5.4 STARTTLS takes no parameters", c.reply())
			c.send(line[:headBytes+10])
			c.expect(line[headBytes+10:], "501 5.5.4 STARTTLS takes no parameters")
			c.expect("NOOP", "250 2.0.0 OK")
		})
	}
}

// Without TLS configured STARTTLS is go-smtp's, which has none to offer.
func TestSTARTTLSWithoutTLS(t *testing.T) {
	c, _ := transports[0].start(t, nil)
	c.expect("STARTTLS", "502 5.5.1 TLS not supported")
	c.expect("NOOP", "250 2.0.0 OK")
}

// A BDAT chunk over max_message_bytes is refused (552) and skipped, and
// the next transaction pipelined right behind it is served: the chunk's
// bytes are never taken for commands.
func TestOversizeBDATChunkThenPipelinedTransaction(t *testing.T) {
	for _, tr := range edgeTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, sink := tr.start(t, func(c *Config) { c.MaxMessageBytes = 100 })
			big := strings.Repeat("RSET\r\n", 40)
			c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT " + strconv.Itoa(len(big)) + " LAST\r\n" + big +
				"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 7 LAST\r\nhello\r\n")
			assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
			assert.Equal(t, "250 2.1.5 Recipient OK", c.reply())
			assert.Equal(t, "552 5.3.4 Max message size exceeded", c.reply())
			assert.Equal(t, "250 2.1.0 Sender OK", c.reply())
			assert.Equal(t, "250 2.1.5 Recipient OK", c.reply())
			assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
			c.expect("NOOP", "250 2.0.0 OK")
			require.Len(t, records(sink), 1)
		})
	}
}
