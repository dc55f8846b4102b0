//go:build windows

package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import "syscall"

// Winsock's error numbers for bind. Package syscall does not name
// WSAEADDRINUSE (its EADDRINUSE is an invented value no Windows call
// returns).
var (
	addrInUseErrno  error = syscall.Errno(10048)
	permissionErrno error = syscall.WSAEACCES
)
