//go:build unix

package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

func isPermission(err error) bool { return errors.Is(err, syscall.EACCES) }

// listen binds a TCP listener. With reuse, SO_REUSEPORT lets every worker
// bind the same address and port, and the kernel spreads new connections
// across them. A positive rcvbuf sets SO_RCVBUF, which accepted sockets
// inherit; unset keeps Linux's receive-buffer autotuning.
func listen(ctx context.Context, addr string, reuse bool, rcvbuf int) (net.Listener, error) {
	lc := net.ListenConfig{
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if reuse {
					if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
						return
					}
				}
				if rcvbuf > 0 {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return lc.Listen(ctx, "tcp", addr)
}
