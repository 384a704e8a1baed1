package udpping

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pinglab/pinglab/internal/icmperr"
)

// An ICMPErrorType is the ICMP error a Server answers with instead of an echo (exercise 6 of the
// lab: clients meet errors without a firewall).
type ICMPErrorType uint8

// The ICMP errors a Server can send. Each maps to a Destination Unreachable code of ICMPv4 and of
// ICMPv6, except ProtoUnreachable over IPv6 (see below).
const (
	// HostUnreachable is ICMPv4 type 3 code 1; ICMPv6 type 1 code 3 (address unreachable).
	HostUnreachable ICMPErrorType = iota + 1
	// NetUnreachable is ICMPv4 type 3 code 0; ICMPv6 type 1 code 0 (no route to destination).
	NetUnreachable
	// PortUnreachable is ICMPv4 type 3 code 3; ICMPv6 type 1 code 4.
	PortUnreachable
	// ProtoUnreachable is ICMPv4 type 3 code 2. ICMPv6 has no protocol-unreachable code: RFC 4443
	// (section 3.4) answers an unknown next header with a Parameter Problem, type 4 code 1
	// ("unrecognized Next Header type"), its pointer at the Next Header field of the quoted
	// header (offset 6), which is what the server sends.
	ProtoUnreachable
	// AdminProhibited is ICMPv4 type 3 code 13 (communication administratively prohibited, RFC
	// 1812, what "iptables -j REJECT --reject-with icmp-admin-prohibited" sends); ICMPv6 type 1
	// code 1.
	AdminProhibited
)

var icmpErrorNames = [...]string{
	HostUnreachable:  "host-unreachable",
	NetUnreachable:   "net-unreachable",
	PortUnreachable:  "port-unreachable",
	ProtoUnreachable: "proto-unreachable",
	AdminProhibited:  "admin-prohibited",
}

var errBadICMPErrorType = errors.New("unknown ICMP error type")

// ICMPErrorTypes returns the names ParseICMPErrorType accepts, in the order of the constants.
func ICMPErrorTypes() []string {
	return append([]string(nil), icmpErrorNames[1:]...)
}

// ParseICMPErrorType parses a name as String returns it ("host-unreachable" ...).
func ParseICMPErrorType(s string) (ICMPErrorType, error) {
	for t, name := range icmpErrorNames {
		if t > 0 && name == s {
			return ICMPErrorType(t), nil
		}
	}
	return 0, fmt.Errorf("udpping: %w %q (choose %s)", errBadICMPErrorType, s, strings.Join(ICMPErrorTypes(), ", "))
}

// String returns the type's name: "host-unreachable", "net-unreachable" ...
func (t ICMPErrorType) String() string {
	if t.valid() {
		return icmpErrorNames[t]
	}
	return fmt.Sprintf("ICMPErrorType(%d)", uint8(t))
}

func (t ICMPErrorType) valid() bool { return t >= HostUnreachable && t <= AdminProhibited }

// Name returns the words the server logs for the error it sends over IPv4 or IPv6, as the
// handout's server does ("Sending ICMP 'Host Unreachable' to ...").
func (t ICMPErrorType) Name(v6 bool) string {
	switch t {
	case HostUnreachable:
		return "Host Unreachable"
	case NetUnreachable:
		return "Net Unreachable"
	case PortUnreachable:
		return "Port Unreachable"
	case ProtoUnreachable:
		if v6 {
			return "Parameter Problem: Unrecognized Next Header"
		}
		return "Protocol Unreachable"
	case AdminProhibited:
		return "Administratively Prohibited"
	}
	return t.String()
}

// Error returns the ICMP error of this type as a client receives it over IPv4 or IPv6: its type,
// code and, for the ICMPv6 parameter problem, its pointer.
func (t ICMPErrorType) Error(v6 bool) *icmperr.Error {
	type tc struct{ typ, code int }
	var m map[ICMPErrorType]tc
	if v6 {
		m = map[ICMPErrorType]tc{
			HostUnreachable:  {icmperr.Type6DestUnreach, icmperr.Code6AddrUnreach},
			NetUnreachable:   {icmperr.Type6DestUnreach, icmperr.Code6NoRoute},
			PortUnreachable:  {icmperr.Type6DestUnreach, icmperr.Code6PortUnreach},
			ProtoUnreachable: {icmperr.Type6ParamProblem, codeUnrecognizedNextHeader},
			AdminProhibited:  {icmperr.Type6DestUnreach, icmperr.Code6AdminProhibited},
		}
	} else {
		m = map[ICMPErrorType]tc{
			HostUnreachable:  {icmperr.TypeDestUnreach, icmperr.CodeHostUnreach},
			NetUnreachable:   {icmperr.TypeDestUnreach, icmperr.CodeNetUnreach},
			PortUnreachable:  {icmperr.TypeDestUnreach, icmperr.CodePortUnreach},
			ProtoUnreachable: {icmperr.TypeDestUnreach, icmperr.CodeProtoUnreach},
			AdminProhibited:  {icmperr.TypeDestUnreach, icmperr.CodePktFiltered},
		}
	}
	c, ok := m[t]
	if !ok {
		return nil
	}
	e := &icmperr.Error{V6: v6, Type: c.typ, Code: c.code}
	if v6 && c.typ == icmperr.Type6ParamProblem {
		e.Info = nextHeaderOffset
	}
	return e
}

const (
	// codeUnrecognizedNextHeader is ICMPv6 Parameter Problem code 1 (RFC 4443).
	codeUnrecognizedNextHeader = 1
	// nextHeaderOffset is where the Next Header field sits in an IPv6 header.
	nextHeaderOffset = 6
	// maxICMP4 is the largest ICMPv4 error, IP header included: RFC 1812 4.3.2.3 asks for as
	// much of the datagram as fits in 576 bytes, as Linux sends.
	maxICMP4 = 576
	// maxICMP6 is the largest ICMPv6 error, IPv6 header included (RFC 4443 2.4 (c): the
	// minimum IPv6 MTU).
	maxICMP6      = 1280
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	icmpHeaderLen = 8
	udpHeaderLen  = 8
	protoUDP      = 17
	defaultTTL    = 64
)

// A datagram is what the server knows of a datagram it received: enough to rebuild the IP and
// UDP headers it arrived with, for the quote of an ICMP error.
type datagram struct {
	src, dst netip.AddrPort // the client, and the server's local address it was sent to
	ttl      int            // TTL or hop limit on arrival; 0 if unknown
	tos      int            // TOS or traffic class on arrival
	payload  []byte
}

// appendICMPError appends the ICMP message of error t about d: the ICMP header and the quote of
// d. An ICMPv4 message carries its checksum; an ICMPv6 one leaves it 0, for the kernel fills it
// in on a raw ICMPv6 socket (it needs the addresses of the outer header, RFC 4443 2.3).
func appendICMPError(b []byte, t ICMPErrorType, d *datagram) []byte {
	v6 := d.src.Addr().Is6()
	e := t.Error(v6)
	start := len(b)
	b = append(b, byte(e.Type), byte(e.Code), 0, 0)
	b = binary.BigEndian.AppendUint32(b, e.Info) // unused, or the parameter problem's pointer
	if v6 {
		b = appendQuote6(b, d, maxICMP6-ipv6HeaderLen-icmpHeaderLen)
		return b
	}
	b = appendQuote4(b, d, maxICMP4-ipv4HeaderLen-icmpHeaderLen)
	binary.BigEndian.PutUint16(b[start+2:], checksum(b[start:], 0))
	return b
}

// appendQuote4 appends the IPv4 header d arrived with, rebuilt, and as much of its UDP datagram
// as fits in room bytes in all. Fields a socket cannot see are set as a Linux sender of a small
// datagram sets them: no options, identification 0, Don't Fragment.
func appendQuote4(b []byte, d *datagram, room int) []byte {
	udpLen := udpHeaderLen + len(d.payload)
	ttl := d.ttl
	if ttl <= 0 {
		ttl = defaultTTL
	}
	h := len(b)
	b = append(b, 0x45, byte(d.tos))
	b = binary.BigEndian.AppendUint16(b, uint16(ipv4HeaderLen+udpLen))
	b = append(b, 0, 0, 0x40, 0, byte(ttl), protoUDP, 0, 0)
	src, dst := d.src.Addr().As4(), d.dst.Addr().As4()
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(b[h+10:], checksum(b[h:h+ipv4HeaderLen], 0))
	pseudo := sum(src[:], 0)
	pseudo = sum(dst[:], pseudo)
	pseudo += protoUDP + uint32(udpLen)
	return appendUDP(b, d, pseudo, room-ipv4HeaderLen)
}

// appendQuote6 appends the IPv6 header d arrived with, rebuilt (flow label 0: a socket cannot
// see it), and as much of its UDP datagram as fits in room bytes in all.
func appendQuote6(b []byte, d *datagram, room int) []byte {
	udpLen := udpHeaderLen + len(d.payload)
	hops := d.ttl
	if hops <= 0 {
		hops = defaultTTL
	}
	tc := uint32(d.tos) & 0xff
	b = binary.BigEndian.AppendUint32(b, 6<<28|tc<<20)
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, protoUDP, byte(hops))
	src, dst := d.src.Addr().As16(), d.dst.Addr().As16()
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	pseudo := sum(src[:], 0)
	pseudo = sum(dst[:], pseudo)
	pseudo += protoUDP + uint32(udpLen)
	return appendUDP(b, d, pseudo, room-ipv6HeaderLen)
}

// appendUDP appends d's UDP header, its checksum over the whole datagram (pseudo is the sum of
// the pseudo-header), and as much of the payload as fits in room bytes with the header.
func appendUDP(b []byte, d *datagram, pseudo uint32, room int) []byte {
	udpLen := udpHeaderLen + len(d.payload)
	h := len(b)
	b = binary.BigEndian.AppendUint16(b, d.src.Port())
	b = binary.BigEndian.AppendUint16(b, d.dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0)
	c := checksum(d.payload, sum(b[h:], pseudo))
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(b[h+6:], c)
	n := min(len(d.payload), max(room-udpHeaderLen, 0))
	return append(b, d.payload[:n]...)
}

// sum adds b as big-endian 16-bit words to s, the Internet checksum's running sum (RFC 1071).
func sum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// checksum returns the Internet checksum of b, added to the running sum s.
func checksum(b []byte, s uint32) uint16 {
	s = sum(b, s)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
