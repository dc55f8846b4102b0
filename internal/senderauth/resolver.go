// Package senderauth checks who really sent a message: SPF (RFC 7208) for
// the envelope sender, DKIM (RFC 6376, RFC 8463) on the bytes received, and
// DMARC (RFC 9989) over both, or copies the results of a trusted upstream
// (RFC 8601). It records; it never rejects.
//
// It has no sockets of its own except the DNS client in dns.go, and no
// collector runtime: the receiver hands it a Resolver, the envelope and the
// message bytes, and writes the Results onto the record.
package senderauth

import (
	"context"
	"errors"
	"net"
)

// Resolver is the DNS the checks use. Errors are *net.DNSError values (not
// wrapped): IsNotFound for NXDOMAIN and for an empty answer, IsTimeout for a
// timeout, IsTemporary for SERVFAIL and other transient failures. That is
// what blitiri.com.ar/go/spf and go-msgauth test for with type assertions.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// dnsErrorOf turns any lookup error into a bare *net.DNSError, so that the
// libraries' type assertions see it: a context error or an unknown error
// becomes a timeout or a temporary failure (temperror), never a permanent
// one (permerror).
func dnsErrorOf(err error, name string) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de
	}
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	return &net.DNSError{Err: err.Error(), Name: name, IsTimeout: timeout, IsTemporary: !timeout}
}

// strictResolver passes each answer of an inner Resolver on, with its
// errors made bare *net.DNSError values (see dnsErrorOf).
type strictResolver struct{ r Resolver }

func (s strictResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := s.r.LookupTXT(ctx, name)
	return v, dnsErrorOf(err, name)
}

func (s strictResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	v, err := s.r.LookupMX(ctx, name)
	return v, dnsErrorOf(err, name)
}

func (s strictResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	v, err := s.r.LookupIPAddr(ctx, host)
	return v, dnsErrorOf(err, host)
}

func (s strictResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	v, err := s.r.LookupAddr(ctx, addr)
	return v, dnsErrorOf(err, addr)
}

// isNotFound says whether err is an NXDOMAIN or empty answer.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// isTemporary says whether err is a failure worth retrying later
// (temperror): a timeout, SERVFAIL, or anything that is not a clear answer.
func isTemporary(err error) bool {
	if err == nil || isNotFound(err) {
		return false
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsTimeout || de.IsTemporary
	}
	return true
}
