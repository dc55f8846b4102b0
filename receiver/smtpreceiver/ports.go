package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// ports records which receiver of this process listens on which address
// and port. With reuse: true the kernel would let two receivers join one
// SO_REUSEPORT group and split connections between them (one with AUTH,
// one without, say); only the workers of one receiver may share a port.
var ports = portRegistry{owners: make(map[portKey]component.ID)}

type portRegistry struct {
	mu     sync.Mutex
	owners map[portKey]component.ID
}

type portKey struct {
	host string // an IP address in canonical form, or a host name as given
	port int
}

func newPortKey(host string, port int) portKey {
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	return portKey{host: host, port: port}
}

// overlaps says whether two bound addresses can take the same connection:
// the same host, or either one a wildcard.
func (k portKey) overlaps(o portKey) bool {
	return k.port == o.port && (k.host == o.host || isWildcard(k.host) || isWildcard(o.host))
}

func isWildcard(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// claim registers id on key, or names the receiver that already has it.
func (r *portRegistry) claim(id component.ID, key portKey) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, owner := range r.owners {
		if owner != id && k.overlaps(key) {
			return fmt.Errorf("smtp receiver %s: port %d on %s is already used by receiver %s in this collector; only the workers of one receiver share a port (reuse: true), give each receiver its own port",
				id, key.port, key.host, owner)
		}
	}
	r.owners[key] = id
	return nil
}

func (r *portRegistry) release(id component.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, owner := range r.owners {
		if owner == id {
			delete(r.owners, k)
		}
	}
}

// probeFree binds addr once without SO_REUSEPORT: that fails while anything
// else listens there, with or without SO_REUSEPORT, where joining the
// group would succeed silently.
func probeFree(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// listenerKey is the registry key of a bound listener.
func listenerKey(host string, ln net.Listener) portKey {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(p)
	return newPortKey(host, port)
}
