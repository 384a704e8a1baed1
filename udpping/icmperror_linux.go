package udpping

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw socket filters (linux/icmp.h, linux/icmpv6.h): a raw ICMP socket gets a copy of every ICMP
// message the host receives; the server only sends, so it filters out every type.
const (
	icmpFilter   = 1 // ICMP_FILTER, at SOL_RAW
	icmpv6Filter = 1 // ICMPV6_FILTER, at IPPROTO_ICMPV6
)

// An icmpSender sends ICMP errors from raw sockets, one per family the server's socket receives.
type icmpSender struct {
	raw4, raw6 *os.File
	oob        []byte // read loop's control buffer
	msg        []byte // read loop's message buffer
}

// openICMPSender opens the raw sockets for the families conn receives, and asks conn for the
// local address, TTL and TOS of each datagram, which the quote of an error needs.
func openICMPSender(conn *net.UDPConn) (*icmpSender, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udpping: %w", err)
	}
	var v4, v6 bool
	var serr error
	err = rc.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			serr = fmt.Errorf("getsockname: %w", err)
			return
		}
		type opt struct{ level, name int }
		var opts []opt
		if _, ok := sa.(*unix.SockaddrInet6); ok {
			v6 = true
			opts = append(opts, opt{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}, opt{unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT},
				opt{unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS})
			only, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			v4 = err == nil && only == 0
		} else {
			v4 = true
		}
		if v4 {
			// On a dual-stack socket IPv4 datagrams come with IPv4's control messages.
			opts = append(opts, opt{unix.IPPROTO_IP, unix.IP_PKTINFO}, opt{unix.IPPROTO_IP, unix.IP_RECVTTL},
				opt{unix.IPPROTO_IP, unix.IP_RECVTOS})
		}
		for _, o := range opts {
			if err := unix.SetsockoptInt(int(fd), o.level, o.name, 1); err != nil {
				serr = fmt.Errorf("setsockopt %d/%d: %w", o.level, o.name, err)
				return
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("udpping: ask for the local address of datagrams: %w", err)
	}
	s := &icmpSender{oob: make([]byte, 256), msg: make([]byte, 0, maxICMP6)}
	if v4 {
		if s.raw4, err = openRaw(unix.AF_INET, unix.IPPROTO_ICMP); err != nil {
			return nil, err
		}
	}
	if v6 {
		if s.raw6, err = openRaw(unix.AF_INET6, unix.IPPROTO_ICMPV6); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func openRaw(family, proto int) (*os.File, error) {
	name := map[int]string{unix.AF_INET: "ICMP", unix.AF_INET6: "ICMPv6"}[family]
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, fmt.Errorf("udpping: %w: open a raw %s socket: %w", ErrNeedRaw, name, err)
	}
	if family == unix.AF_INET {
		err = unix.SetsockoptInt(fd, unix.SOL_RAW, icmpFilter, -1) // every bit set: every type filtered
	} else {
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = ^uint32(0) // a set bit blocks the type
		}
		err = unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, icmpv6Filter, &f)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("udpping: filter the raw %s socket: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "raw-"+name), nil
}

func (s *icmpSender) close() {
	for _, f := range []*os.File{s.raw4, s.raw6} {
		if f != nil {
			f.Close()
		}
	}
}

// arrival reads the local address, TTL and TOS of a datagram from its control messages into d.
// ok is false when the datagram was not sent to one of our unicast addresses (a broadcast, a
// multicast), or its local address is missing: no ICMP error may answer it (RFC 1122 3.2.2).
func arrival(oob []byte, d *datagram) (ifindex int, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&m.Data[0]))
			// For a unicast datagram to us, the header's destination (Addr) is the address to
			// answer from (Spec_dst); for a broadcast they differ.
			if pi.Addr == pi.Spec_dst {
				d.dst = netip.AddrPortFrom(netip.AddrFrom4(pi.Addr), d.dst.Port())
				ifindex, ok = int(pi.Ifindex), true
			}
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL && len(m.Data) >= 4:
			d.ttl = int(*(*int32)(unsafe.Pointer(&m.Data[0])))
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TOS && len(m.Data) >= 1:
			d.tos = int(m.Data[0])
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&m.Data[0]))
			a := netip.AddrFrom16(pi.Addr)
			if !a.IsMulticast() {
				d.dst = netip.AddrPortFrom(a, d.dst.Port())
				ifindex, ok = int(pi.Ifindex), true
			}
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			d.ttl = int(*(*int32)(unsafe.Pointer(&m.Data[0])))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_TCLASS && len(m.Data) >= 4:
			d.tos = int(*(*int32)(unsafe.Pointer(&m.Data[0])))
		}
	}
	if ok && d.dst.Addr().Is4() != d.src.Addr().Is4() {
		ok = false // cannot happen on a sound socket; never quote a header with mixed families
	}
	return ifindex, ok
}

// send sends ICMP error t about d to its sender, from the local address d arrived on.
func (s *icmpSender) send(t ICMPErrorType, d *datagram, ifindex int) error {
	s.msg = appendICMPError(s.msg[:0], t, d)
	to, from := d.src.Addr(), d.dst.Addr()
	var (
		f   *os.File
		sa  unix.Sockaddr
		oob []byte
	)
	// The interface is given only where an address needs it (link-local); elsewhere routing
	// picks the way back, as for the server's echoes.
	if !to.IsLinkLocalUnicast() && !from.IsLinkLocalUnicast() {
		ifindex = 0
	}
	if to.Is4() {
		f, sa = s.raw4, &unix.SockaddrInet4{Addr: to.As4()}
		oob = unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: int32(ifindex), Spec_dst: from.As4()})
	} else {
		f, sa = s.raw6, &unix.SockaddrInet6{Addr: to.As16(), ZoneId: uint32(ifindex)}
		oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: from.As16(), Ifindex: uint32(ifindex)})
	}
	if f == nil {
		return fmt.Errorf("udpping: no raw socket for %s", to)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		// Never block the read loop: a full send buffer loses the error, as a busy router would.
		_, serr = unix.SendmsgN(int(fd), s.msg, oob, sa, unix.MSG_DONTWAIT)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send ICMP error: %w", err)
	}
	return nil
}
