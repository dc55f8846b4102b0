//go:build windows

package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// wsaeAddrInUse is Winsock's WSAEADDRINUSE, which package syscall does not
// name (its EADDRINUSE is an invented value no Windows call returns).
const wsaeAddrInUse = syscall.Errno(10048)

func isAddrInUse(err error) bool { return errors.Is(err, wsaeAddrInUse) }

func isPermission(err error) bool { return errors.Is(err, syscall.WSAEACCES) }

// listen binds a TCP listener; SO_REUSEPORT multi-worker mode needs a Unix.
func listen(ctx context.Context, addr string, reuse bool, rcvbuf int) (net.Listener, error) {
	if reuse {
		return nil, errors.New("reuse: true (SO_REUSEPORT workers) is supported on Linux and other Unix systems only")
	}
	if rcvbuf > 0 {
		return nil, errors.New("socket_receive_buffer is supported on Linux and other Unix systems only")
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}
