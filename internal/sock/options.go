package sock

import "syscall"

// Options are the IP-level settings of a probe's socket, as ping's -t, -Q and -I set them.
// The zero value changes nothing.
type Options struct {
	// TTL is the time to live (IPv4) or hop limit (IPv6) of what the socket sends; 0 keeps the
	// system's.
	TTL int
	// TOS is the type of service byte (IPv4) or traffic class (IPv6), DSCP and ECN; 0 keeps
	// the system's.
	TOS int
	// Interface binds the socket to a network device (SO_BINDTODEVICE), so that probes leave
	// through it whatever the routes say; "" binds to none.
	Interface string
}

// IsZero reports whether o changes nothing.
func (o Options) IsZero() bool { return o == Options{} }

// Control returns a net.Dialer or net.ListenConfig Control function that applies o, after next
// when next is not nil.
func (o Options) Control(next func(network, address string, c syscall.RawConn) error) func(network, address string, c syscall.RawConn) error {
	if o.IsZero() {
		return next
	}
	return func(network, address string, c syscall.RawConn) error {
		if next != nil {
			if err := next(network, address, c); err != nil {
				return err
			}
		}
		v6 := len(network) > 0 && network[len(network)-1] == '6'
		var err error
		if cerr := c.Control(func(fd uintptr) { err = o.Apply(int(fd), v6) }); cerr != nil {
			return cerr
		}
		return err
	}
}
