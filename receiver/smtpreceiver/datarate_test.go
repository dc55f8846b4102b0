package smtpreceiver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// sumWith adds up the data points of an int sum that carry attribute kv.
func sumWith(tel *componenttest.Telemetry, name string, kv attribute.KeyValue) int64 {
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if v, ok := dp.Attributes.Value(kv.Key); ok && v == kv.Value {
			total += dp.Value
		}
	}
	return total
}

// trickle sends one byte every interval until the server has answered or
// max bytes are sent; it returns how many it sent.
func trickle(c *rawClient, interval time.Duration, max int) int {
	sent := 0
	for ; sent < max && !hasData(c); sent++ {
		if _, err := c.conn.Write([]byte{'x'}); err != nil {
			break
		}
		time.Sleep(interval)
	}
	return sent
}

// trickleTransfer starts a transfer (DATA or BDAT) and sends its bytes
// far below min_data_rate 256 (one every 200 ms, within a 1 s idle
// timeout): it requires the one 421 and the close.
func trickleTransfer(t *testing.T, c *rawClient, mode string) {
	t.Helper()
	c.expect("MAIL FROM:<a@example.com>", "250")
	c.expect("RCPT TO:<b@example.com>", "250")
	if mode == "DATA" {
		c.expect("DATA", "354")
	} else {
		c.send("BDAT 100000 LAST\r\n")
	}
	sent := trickle(c, 200*time.Millisecond, 50)
	require.Less(t, sent, 50, "the server let the client trickle for %v", 50*200*time.Millisecond)
	assert.Equal(t, "421 4.4.2 Message transfer too slow (below min_data_rate), closing connection", c.reply())
	assertNothingMore(t, c)
}

// Issue 10.9: a transfer below min_data_rate over a timeout window gets
// 421 4.4.2 and is closed long before data_timeout, and is counted.
func TestSlowDataIsClosed(t *testing.T) {
	for _, mode := range []string{"DATA", "BDAT"} {
		t.Run(mode, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r, tel, _ := observedReceiver(t, testConfig(func(c *Config) {
				c.Timeout = 1
				c.MinDataRate = 256
				c.DataTimeout = 600
			}), sink)
			c := dial(t, r.addr())
			c.expect("EHLO x", "250")
			trickleTransfer(t, c, mode)
			assert.Empty(t, records(sink))
			require.Eventually(t, func() bool {
				return sumWith(tel, "otelcol_smtp_messages_rejected", attribute.String("reason", "too_slow")) == 1
			}, 5*time.Second, 20*time.Millisecond)
		})
	}
}

// stepClock is a clock that moves on by step every time it is read.
type stepClock struct {
	mu   sync.Mutex
	at   time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(c.step)
	return c.at
}

// A transfer at a normal rate is not affected. The transfer limits read a
// clock that moves on 100 ms at every read of message bytes, so the rate
// they see does not depend on how fast this machine is: each read brings
// at least one 600-byte line (a write on loopback arrives whole), at most
// three reads per line as go-smtp takes the buffer in pieces, so at least
// 2000 bytes per second against a minimum of 256; go-smtp reads at most
// 4096 bytes at a time, so the 300 kB span at least three windows of 2 s.
func TestFastDataPassesTheRateCheck(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig(func(c *Config) { c.Timeout = 2; c.MinDataRate = 256 })
	r, err := newReceiver(nopSettings(), cfg, sink)
	require.NoError(t, err)
	r.now = (&stepClock{at: time.Now(), step: 100 * time.Millisecond}).now
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	c := dial(t, r.addr())
	c.expect("EHLO x", "250")
	c.openData()
	for range 500 {
		c.send(strings.Repeat("y", 598) + "\r\n")
	}
	c.send(".\r\n")
	assert.Equal(t, "250 2.0.0 OK: queued", c.reply())
	require.Len(t, records(sink), 1)
}

func TestMinDataRateValidation(t *testing.T) {
	for _, v := range []int{-1, maxMinDataRate + 1} {
		cfg := testConfig(func(c *Config) { c.MinDataRate = v })
		err := cfg.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "min_data_rate")
	}
	assert.NoError(t, testConfig(func(c *Config) { c.MinDataRate = 0 }).Validate())
}
