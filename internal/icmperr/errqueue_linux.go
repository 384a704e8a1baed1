package icmperr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/sock"
)

var errNoRecvErr = errors.New("no IP_RECVERR or IPV6_RECVERR control message")

// ParseErrQueue decodes the control messages of one read from a socket's error queue
// (recvmsg with MSG_ERRQUEUE on a socket with IP_RECVERR or IPV6_RECVERR set) into an *Error:
// the ICMP type and code, the errno, and the offender (the router or host that sent it).
// An error raised by the local stack (origin SO_EE_ORIGIN_LOCAL) comes back with Type NoICMP and
// iputils' words for it ("Local error: Message too long, mtu=1500").
func ParseErrQueue(oob []byte) (*Error, error) {
	for m := range sock.ControlMessages(oob) {
		v4 := m.Level == unix.SOL_IP && m.Type == unix.IP_RECVERR
		v6 := m.Level == unix.SOL_IPV6 && m.Type == unix.IPV6_RECVERR
		if !v4 && !v6 {
			continue
		}
		return parseExtendedErr(m.Data)
	}
	return nil, errNoRecvErr
}

const sizeofExtendedErr = int(unsafe.Sizeof(unix.SockExtendedErr{}))

func parseExtendedErr(b []byte) (*Error, error) {
	if len(b) < sizeofExtendedErr {
		return nil, fmt.Errorf("icmperr: extended error of %d bytes, want at least %d", len(b), sizeofExtendedErr)
	}
	ee := unix.SockExtendedErr{
		Errno:  binary.NativeEndian.Uint32(b[0:4]),
		Origin: b[4],
		Type:   b[5],
		Code:   b[6],
		Info:   binary.NativeEndian.Uint32(b[8:12]),
		Data:   binary.NativeEndian.Uint32(b[12:16]),
	}
	e := &Error{
		Type:  int(ee.Type),
		Code:  int(ee.Code),
		Info:  ee.Info,
		Errno: syscall.Errno(ee.Errno),
		From:  offender(b[sizeofExtendedErr:]),
	}
	switch ee.Origin {
	case unix.SO_EE_ORIGIN_ICMP:
	case unix.SO_EE_ORIGIN_ICMP6:
		e.V6 = true
	case unix.SO_EE_ORIGIN_LOCAL:
		e.Type, e.Code = NoICMP, 0
		e.Reason = "Local error: " + sock.Capitalize(e.Errno.Error())
		if e.Errno == syscall.EMSGSIZE {
			e.Reason = fmt.Sprintf("Local error: Message too long, mtu=%d", ee.Info)
		}
	default:
		e.Type, e.Code = NoICMP, 0
	}
	return e, nil
}

// offender reads the sockaddr the kernel puts right after sock_extended_err (SO_EE_OFFENDER).
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}
