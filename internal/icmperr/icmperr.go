// Package icmperr is pinglab's one vocabulary for ICMP errors and the socket errors that stand for
// them. Every client (UDP, TCP, ICMP) reports a failed probe as an *Error, so that the same
// condition reads the same way whatever protocol met it, in the words iputils ping prints.
package icmperr

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/pinglab/pinglab/internal/sock"
)

// ICMPv4 types as an Error's Type holds them: golang.org/x/net/ipv4's, as ints (source quench,
// deprecated by RFC 6633, is not among x/net's); and Destination Unreachable codes (RFC 792,
// RFC 1812), which x/net does not name.
const (
	TypeDestUnreach    = int(ipv4.ICMPTypeDestinationUnreachable)
	TypeSourceQuench   = 4
	TypeRedirect       = int(ipv4.ICMPTypeRedirect)
	TypeTimeExceeded   = int(ipv4.ICMPTypeTimeExceeded)
	TypeParamProblem   = int(ipv4.ICMPTypeParameterProblem)
	TypeEchoReply      = int(ipv4.ICMPTypeEchoReply)
	TypeEchoRequest    = int(ipv4.ICMPTypeEcho)
	CodeNetUnreach     = 0
	CodeHostUnreach    = 1
	CodeProtoUnreach   = 2
	CodePortUnreach    = 3
	CodeFragNeeded     = 4
	CodeNetProhibited  = 9
	CodeHostProhibited = 10
	CodePktFiltered    = 13
)

// ICMPv6 types, golang.org/x/net/ipv6's as ints, and Destination Unreachable codes (RFC 4443).
const (
	Type6DestUnreach     = int(ipv6.ICMPTypeDestinationUnreachable)
	Type6PacketTooBig    = int(ipv6.ICMPTypePacketTooBig)
	Type6TimeExceeded    = int(ipv6.ICMPTypeTimeExceeded)
	Type6ParamProblem    = int(ipv6.ICMPTypeParameterProblem)
	Type6EchoRequest     = int(ipv6.ICMPTypeEchoRequest)
	Type6EchoReply       = int(ipv6.ICMPTypeEchoReply)
	Code6NoRoute         = 0
	Code6AdminProhibited = 1
	Code6BeyondScope     = 2
	Code6AddrUnreach     = 3
	Code6PortUnreach     = 4
	Code6PolicyFail      = 5
	Code6RejectRoute     = 6
)

// NoICMP is the Type of an Error that did not arrive as an ICMP message: a TCP reset, a
// connection that timed out, an error the local stack raised.
const NoICMP = -1

// An Error is one ICMP error (or socket error standing for one) met by a probe.
type Error struct {
	// V6 is set for ICMPv6 types and codes; otherwise they are ICMPv4's.
	V6 bool
	// Type and Code are the ICMP message's; Type is NoICMP when no ICMP message was involved.
	Type, Code int
	// From is the router or host that sent the error; the zero Addr when unknown.
	From netip.Addr
	// Name is From's name where the client looked it up (ping without -n), or "".
	Name string
	// Info is the MTU of "frag needed" and "packet too big", the pointer of a parameter problem.
	Info uint32
	// Gateway is a redirect's new next hop.
	Gateway netip.Addr
	// Errno is what the kernel reported for it, where it did (ECONNREFUSED, EHOSTUNREACH ...).
	Errno syscall.Errno
	// Reason holds the words of an error with Type NoICMP.
	Reason string
}

// Error returns the words, so that an *Error can travel as an error.
func (e *Error) Error() string { return e.Words() }

// Unwrap returns the errno, so that errors.Is(err, syscall.ECONNREFUSED) works.
func (e *Error) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// Words returns what iputils ping prints for the error, such as "Destination Host Unreachable"
// or "Time exceeded: Hop limit".
func (e *Error) Words() string {
	switch {
	case e.Type == NoICMP:
		if e.Reason != "" {
			return e.Reason
		}
		if e.Errno != 0 {
			return sock.Capitalize(e.Errno.Error())
		}
		return "Unknown error"
	case e.V6:
		return words6(e)
	default:
		return words4(e)
	}
}

func words4(e *Error) string {
	switch e.Type {
	case TypeEchoReply:
		return "Echo Reply"
	case TypeDestUnreach:
		switch e.Code {
		case CodeNetUnreach:
			return "Destination Net Unreachable"
		case CodeHostUnreach:
			return "Destination Host Unreachable"
		case CodeProtoUnreach:
			return "Destination Protocol Unreachable"
		case CodePortUnreach:
			return "Destination Port Unreachable"
		case CodeFragNeeded:
			return fmt.Sprintf("Frag needed and DF set (mtu = %d)", e.Info)
		case 5:
			return "Source Route Failed"
		case 6:
			return "Destination Net Unknown"
		case 7:
			return "Destination Host Unknown"
		case 8:
			return "Source Host Isolated"
		case CodeNetProhibited:
			return "Destination Net Prohibited"
		case CodeHostProhibited:
			return "Destination Host Prohibited"
		case 11:
			return "Destination Net Unreachable for Type of Service"
		case 12:
			return "Destination Host Unreachable for Type of Service"
		case CodePktFiltered:
			return "Packet filtered"
		case 14:
			return "Precedence Violation"
		case 15:
			return "Precedence Cutoff"
		default:
			return fmt.Sprintf("Dest Unreachable, Bad Code: %d", e.Code)
		}
	case TypeSourceQuench:
		return "Source Quench"
	case TypeRedirect:
		var w string
		switch e.Code {
		case 0:
			w = "Redirect Network"
		case 1:
			w = "Redirect Host"
		case 2:
			w = "Redirect Type of Service and Network"
		case 3:
			w = "Redirect Type of Service and Host"
		default:
			w = fmt.Sprintf("Redirect, Bad Code: %d", e.Code)
		}
		if e.Gateway.IsValid() {
			w += fmt.Sprintf("(New nexthop: %s)", e.Gateway)
		}
		return w
	case TypeEchoRequest:
		return "Echo Request"
	case TypeTimeExceeded:
		switch e.Code {
		case 0:
			return "Time to live exceeded"
		case 1:
			return "Frag reassembly time exceeded"
		default:
			return fmt.Sprintf("Time exceeded, Bad Code: %d", e.Code)
		}
	case TypeParamProblem:
		return fmt.Sprintf("Parameter problem: pointer = %d", e.Info)
	case 13:
		return "Timestamp"
	case 14:
		return "Timestamp Reply"
	case 15:
		return "Information Request"
	case 16:
		return "Information Reply"
	case 17:
		return "Address Mask Request"
	case 18:
		return "Address Mask Reply"
	default:
		return fmt.Sprintf("Bad ICMP type: %d", e.Type)
	}
}

func words6(e *Error) string {
	switch e.Type {
	case Type6DestUnreach:
		w := "Destination unreachable: "
		switch e.Code {
		case Code6NoRoute:
			return w + "No route"
		case Code6AdminProhibited:
			return w + "Administratively prohibited"
		case Code6BeyondScope:
			return w + "Beyond scope of source address"
		case Code6AddrUnreach:
			return w + "Address unreachable"
		case Code6PortUnreach:
			return w + "Port unreachable"
		case Code6PolicyFail:
			return w + "Source address failed ingress/egress policy"
		case Code6RejectRoute:
			return w + "Reject route to destination"
		default:
			return w + fmt.Sprintf("Unknown code %d", e.Code)
		}
	case Type6PacketTooBig:
		if e.Code != 0 {
			return fmt.Sprintf("Packet too big: mtu=%d, code=%d", e.Info, e.Code)
		}
		return fmt.Sprintf("Packet too big: mtu=%d", e.Info)
	case Type6TimeExceeded:
		switch e.Code {
		case 0:
			return "Time exceeded: Hop limit"
		case 1:
			return "Time exceeded: Defragmentation failure"
		default:
			return fmt.Sprintf("Time exceeded: code %d", e.Code)
		}
	case Type6ParamProblem:
		w := "Parameter problem: "
		switch e.Code {
		case 0:
			w += "Wrong header field "
		case 1:
			w += "Unknown header "
		case 2:
			w += "Unknown option "
		default:
			w += fmt.Sprintf("code %d ", e.Code)
		}
		return w + fmt.Sprintf("at %d", e.Info)
	case Type6EchoRequest:
		return "Echo request"
	case Type6EchoReply:
		return "Echo reply"
	default:
		return fmt.Sprintf("unknown icmp type: %d", e.Type)
	}
}

// Annotation returns traceroute's mark for the error: "!H", "!N", "!P", "!X", "!F-1500" ...,
// and "" for what means the destination was reached (port unreachable) or needs no mark.
func (e *Error) Annotation() string {
	if e.Type == NoICMP {
		return ""
	}
	if e.V6 {
		switch e.Type {
		case Type6DestUnreach:
			switch e.Code {
			case Code6NoRoute:
				return "!N"
			case Code6BeyondScope, Code6AddrUnreach:
				return "!H"
			case Code6AdminProhibited, Code6PolicyFail, Code6RejectRoute:
				return "!X"
			case Code6PortUnreach:
				return ""
			default:
				return fmt.Sprintf("!<%d>", e.Code)
			}
		case Type6PacketTooBig:
			return fmt.Sprintf("!F-%d", e.Info)
		}
		return ""
	}
	if e.Type != TypeDestUnreach {
		return ""
	}
	switch e.Code {
	case CodeNetUnreach, 6, 8, 11:
		return "!N"
	case CodeHostUnreach, 7, 12:
		return "!H"
	case CodeNetProhibited, CodeHostProhibited, CodePktFiltered:
		return "!X"
	case CodePortUnreach:
		return ""
	case CodeProtoUnreach:
		return "!P"
	case CodeFragNeeded:
		return fmt.Sprintf("!F-%d", e.Info)
	case 5:
		return "!S"
	case 14:
		return "!V"
	case 15:
		return "!C"
	default:
		return fmt.Sprintf("!<%d>", e.Code)
	}
}

// Final reports whether the error means the probe reached as far as it can: every destination
// unreachable and packet-too-big does; time exceeded does not (a router on the way answered).
func (e *Error) Final() bool {
	if e.Type == NoICMP {
		return true
	}
	if e.V6 {
		return e.Type == Type6DestUnreach || e.Type == Type6PacketTooBig || e.Type == Type6ParamProblem
	}
	return e.Type == TypeDestUnreach || e.Type == TypeParamProblem
}

// FromErrno maps a socket error with no ICMP detail (what connect and read report on a TCP socket)
// onto the vocabulary: a host or net unreachable becomes the ICMP error that causes it, a reset
// or refusal keeps its own words. It returns nil when err carries no errno it knows.
func FromErrno(err error, v6 bool, from netip.Addr) *Error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return nil
	}
	e := &Error{V6: v6, Type: NoICMP, From: from, Errno: errno}
	switch errno {
	case syscall.ECONNREFUSED:
		e.Reason = "Connection refused"
	case syscall.ECONNRESET:
		e.Reason = "Connection reset by peer"
	case syscall.ETIMEDOUT:
		e.Reason = "Connection timed out"
	case syscall.EHOSTUNREACH:
		e.Type, e.Code = unreach(v6, CodeHostUnreach, Code6AddrUnreach)
	case syscall.ENETUNREACH:
		e.Type, e.Code = unreach(v6, CodeNetUnreach, Code6NoRoute)
	case syscall.ENOPROTOOPT:
		if v6 {
			return nil
		}
		e.Type, e.Code = TypeDestUnreach, CodeProtoUnreach
	case syscall.EACCES, syscall.EPERM:
		e.Type, e.Code = unreach(v6, CodeHostProhibited, Code6AdminProhibited)
	default:
		return nil
	}
	return e
}

func unreach(v6 bool, code4, code6 int) (int, int) {
	if v6 {
		return Type6DestUnreach, code6
	}
	return TypeDestUnreach, code4
}
