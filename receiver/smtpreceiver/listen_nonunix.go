//go:build !unix && !windows

package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

// These systems share no error numbers for bind; errors are recognised by
// their text.
var addrInUseErrno, permissionErrno error
