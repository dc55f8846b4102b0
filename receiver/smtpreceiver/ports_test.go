package smtpreceiver

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver/internal/metadata"
)

// freeLoopbackPort returns a port nothing listens on right now.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// startNamed starts a receiver with the given component name; it returns
// the receiver and the error of Start.
func startNamed(t *testing.T, name string, cfg *Config) (*smtpReceiver, error) {
	t.Helper()
	set := nopSettings()
	set.ID = component.NewIDWithName(metadata.Type, name)
	r, err := newReceiver(set, cfg, new(consumertest.LogsSink))
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	t.Cleanup(func() { assert.NoError(t, r.Shutdown(context.Background())) })
	return r, err
}

// Issue 10.4: with reuse: true, a port another socket listens on (with or
// without SO_REUSEPORT) is refused at start, naming the port.
func TestReuseRefusesAPortInUse(t *testing.T) {
	for _, foreignReuse := range []bool{false, true} {
		t.Run("foreign SO_REUSEPORT "+strconv.FormatBool(foreignReuse), func(t *testing.T) {
			port := freeLoopbackPort(t)
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			// Another process's listener, as another collector would bind it.
			foreign, err := listen(context.Background(), addr, foreignReuse, 0)
			require.NoError(t, err)
			defer foreign.Close()

			_, err = startNamed(t, "second", testConfig(func(c *Config) {
				c.Port, c.Reuse, c.Workers = new(port), true, 2
			}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), addr)
			assert.Contains(t, err.Error(), "already uses this port")
		})
	}
}

// Two receivers of one collector on one address and port fail at start,
// naming the port and both receivers, whatever their reuse setting; a
// wildcard address overlaps every other.
func TestTwoReceiversCannotShareAPort(t *testing.T) {
	tests := []struct {
		name         string
		first, other string
		reuse        bool
	}{
		{"same address, reuse", "127.0.0.1", "127.0.0.1", true},
		{"same address, no reuse", "127.0.0.1", "127.0.0.1", false},
		{"wildcard then loopback, reuse", "0.0.0.0", "127.0.0.1", true},
		{"loopback then wildcard, reuse", "127.0.0.1", "0.0.0.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freeLoopbackPort(t)
			_, err := startNamed(t, "alpha", testConfig(func(c *Config) {
				c.Address, c.Port, c.Reuse = tt.first, new(port), tt.reuse
			}))
			require.NoError(t, err)
			_, err = startNamed(t, "beta", testConfig(func(c *Config) {
				c.Address, c.Port, c.Reuse = tt.other, new(port), tt.reuse
			}))
			require.Error(t, err)
			msg := err.Error()
			assert.Contains(t, msg, "port "+strconv.Itoa(port))
			assert.Contains(t, msg, "smtp/alpha")
			assert.Contains(t, msg, "smtp/beta")
		})
	}
}

// A receiver that shut down gives its port back to the registry.
func TestPortFreedAtShutdown(t *testing.T) {
	port := freeLoopbackPort(t)
	cfg := func(c *Config) { c.Port, c.Reuse = new(port), true }
	first, err := startNamed(t, "alpha", testConfig(cfg))
	require.NoError(t, err)
	require.NoError(t, first.Shutdown(context.Background()))
	_, err = startNamed(t, "beta", testConfig(cfg))
	require.NoError(t, err)
}

func TestIsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String())
	require.Error(t, err)
	assert.True(t, isAddrInUse(err))
	assert.False(t, isAddrInUse(net.ErrClosed))
}
