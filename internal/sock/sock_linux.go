package sock

import (
	"encoding/binary"
	"fmt"
	"iter"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enonet is ENONET, which ICMP host isolated leaves; only Linux has the name.
const enonet = unix.ENONET

// Recvmsg is recvmsg(2) on a non-blocking socket, without the costs of unix.Recvmsg per read:
// x/sys asks the socket its protocol (getsockopt SO_PROTOCOL) on every IPv4 or IPv6 read and
// allocates the sender's Sockaddr. A flood reads twice per probe, so that is a syscall and an
// allocation off the hot path. It returns the payload's length n, the control messages' length
// oobn, the message flags (MSG_TRUNC, MSG_CTRUNC) and the sender (the zero Addr when the
// kernel gives none, as for the error queue of some sockets). The errno is returned bare, as a
// unix.Errno, so that callers can switch on it without allocating.
//
// The socket must be non-blocking (SOCK_NONBLOCK, or flags with MSG_DONTWAIT): the call uses
// RawSyscall, which spares the scheduler's bookkeeping of a blocking call, so it must never
// wait.
func Recvmsg(fd int, p, oob []byte, flags int) (n, oobn, rflags int, from netip.Addr, err error) {
	var rsa unix.RawSockaddrAny
	var iov unix.Iovec
	msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&rsa)), Namelen: unix.SizeofSockaddrAny}
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
		msg.Iov = &iov
		msg.SetIovlen(1)
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if errno != 0 {
		return 0, 0, 0, netip.Addr{}, errno
	}
	switch rsa.Addr.Family {
	case unix.AF_INET:
		from = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa)).Addr)
	case unix.AF_INET6:
		from = netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa)).Addr).Unmap()
	}
	return int(r), int(msg.Controllen), int(msg.Flags), from, nil
}

// A ControlMessage is one control message (cmsg) of a read: its level, type and data, the data
// a slice of the buffer read into.
type ControlMessage struct {
	Level, Type int32
	Data        []byte
}

// ControlMessages walks the control messages in oob, the control buffer of one recvmsg, in
// place: unix.ParseSocketControlMessage allocates a slice per read, and every reply comes with
// a timestamp. A message whose length runs past the buffer (as after MSG_CTRUNC) ends the walk.
func ControlMessages(oob []byte) iter.Seq[ControlMessage] {
	return func(yield func(ControlMessage) bool) {
		for len(oob) >= unix.SizeofCmsghdr {
			h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			l := int(h.Len)
			if l < unix.CmsgLen(0) || l > len(oob) {
				return
			}
			if !yield(ControlMessage{Level: h.Level, Type: h.Type, Data: oob[unix.CmsgLen(0):l]}) {
				return
			}
			next := unix.CmsgSpace(l - unix.CmsgLen(0))
			if next >= len(oob) {
				return
			}
			oob = oob[next:]
		}
	}
}

// Control is what the control messages of a read say about it.
type Control struct {
	// Time is the kernel's receive time (SCM_TIMESTAMPNS, see SetTimestamps), or the zero Time.
	Time time.Time
	// TTL is the received TTL or hop limit (IP_TTL with IP_RECVTTL, IPV6_HOPLIMIT with
	// IPV6_RECVHOPLIMIT), or 0.
	TTL int
}

// ParseControl reads the receive time and the TTL from a read's control messages.
func ParseControl(oob []byte) Control {
	var c Control
	for m := range ControlMessages(oob) {
		switch {
		case m.Level == unix.SOL_SOCKET && m.Type == unix.SCM_TIMESTAMPNS:
			if len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				c.Time = time.Unix(int64(ts.Sec), int64(ts.Nsec))
			}
		case m.Level == unix.SOL_IP && m.Type == unix.IP_TTL,
			m.Level == unix.SOL_IPV6 && m.Type == unix.IPV6_HOPLIMIT:
			if len(m.Data) >= 4 {
				c.TTL = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		}
	}
	return c
}

// SetTimestamps asks the kernel for the receive time of every datagram on fd, as an
// SCM_TIMESTAMPNS control message (SO_TIMESTAMPNS): the time the packet arrived, not the time
// a busy reader got to it.
func SetTimestamps(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("set SO_TIMESTAMPNS: %w", err)
	}
	return nil
}

// SetRecvErr asks the kernel to queue the ICMP errors (and local errors) about fd's datagrams
// on its error queue, read with MSG_ERRQUEUE (IP_RECVERR, or IPV6_RECVERR when v6).
func SetRecvErr(fd int, v6 bool) error {
	level, opt, name := unix.IPPROTO_IP, unix.IP_RECVERR, "IP_RECVERR"
	if v6 {
		level, opt, name = unix.IPPROTO_IPV6, unix.IPV6_RECVERR, "IPV6_RECVERR"
	}
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}
