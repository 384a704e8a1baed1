package sock

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Apply sets o on the socket fd, of IPv6 when v6.
func (o Options) Apply(fd int, v6 bool) error {
	ttlOpt, tosOpt, level := unix.IP_TTL, unix.IP_TOS, unix.SOL_IP
	if v6 {
		ttlOpt, tosOpt, level = unix.IPV6_UNICAST_HOPS, unix.IPV6_TCLASS, unix.SOL_IPV6
	}
	if o.TTL != 0 {
		if err := unix.SetsockoptInt(fd, level, ttlOpt, o.TTL); err != nil {
			return fmt.Errorf("set ttl %d: %w", o.TTL, err)
		}
	}
	if o.TOS != 0 {
		if err := unix.SetsockoptInt(fd, level, tosOpt, o.TOS); err != nil {
			return fmt.Errorf("set tos %#x: %w", o.TOS, err)
		}
	}
	if o.Interface != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, o.Interface); err != nil {
			return fmt.Errorf("bind to interface %s: %w", o.Interface, err)
		}
	}
	return nil
}
