//go:build !unix

package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"errors"
	"net"
	"strings"
)

// isAddrInUse and isPermission recognise bind errors by the system's error
// number where there is one (addrInUseErrno, permissionErrno) and else by
// their text.
func isAddrInUse(err error) bool {
	return isBindError(err, addrInUseErrno, "address already in use")
}

func isPermission(err error) bool {
	return isBindError(err, permissionErrno, "permission denied")
}

func isBindError(err, errno error, text string) bool {
	if err == nil {
		return false
	}
	if errno != nil && errors.Is(err, errno) {
		return true
	}
	return strings.Contains(strings.ToLower(err.Error()), text)
}

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
