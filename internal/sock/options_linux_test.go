package sock

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestOptionsControl dials with Options' Control and reads the settings back from the kernel.
func TestOptionsControl(t *testing.T) {
	for _, tt := range []struct {
		network, addr   string
		level, ttl, tos int
	}{
		{"udp4", "127.0.0.1:9", unix.SOL_IP, unix.IP_TTL, unix.IP_TOS},
		{"udp6", "[::1]:9", unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, unix.IPV6_TCLASS},
	} {
		t.Run(tt.network, func(t *testing.T) {
			o := Options{TTL: 7, TOS: 0xb8}
			if os.Geteuid() == 0 {
				o.Interface = "lo" // SO_BINDTODEVICE wants CAP_NET_RAW on older kernels
			}
			nested := false
			d := net.Dialer{Control: o.Control(func(string, string, syscall.RawConn) error { nested = true; return nil })}
			c, err := d.DialContext(context.Background(), tt.network, tt.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", tt.network, err)
			}
			defer c.Close()
			fd := rawFd(t, c.(*net.UDPConn))
			got := Options{}
			got.TTL, _ = unix.GetsockoptInt(fd, tt.level, tt.ttl)
			got.TOS, _ = unix.GetsockoptInt(fd, tt.level, tt.tos)
			if o.Interface != "" {
				got.Interface, _ = unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
			}
			if diff := cmp.Diff(o, got); diff != "" || !nested {
				t.Errorf("socket options (-want +got):\n%s (the next Control ran: %v)", diff, nested)
			}
		})
	}
	if (Options{}).Control(nil) != nil {
		t.Error("the zero Options make a Control function")
	}
	if err := (Options{Interface: "nonesuch0"}).Apply(-1, false); err == nil {
		t.Error("Apply on a bad descriptor succeeded")
	}
}
