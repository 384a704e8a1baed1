// Package icmpping implements ICMP echo and traceroute, as described in RFC 792 and RFC 4443.
//
// A Conn is a probe.Transport: it sends echo requests over an unprivileged datagram ("ping")
// socket where the system allows one, or over a raw socket, and reads back echo replies and the
// ICMP errors that quote its probes. Trace walks the path to a host hop by hop, with UDP or ICMP
// probes, without privileges.
package icmpping

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/sock"
)

// DefaultSize is iputils' default payload size: 56 bytes, so that replies read "64 bytes from".
const DefaultSize = 56

// MinSize is the smallest payload that carries the send time and the run's cookie (8 bytes
// each): the smallest a timed run takes. Smaller payloads (down to none) are sent as iputils
// sends them, and their replies, matched by identifier and sequence alone, are printed without
// "time=" (Conn.Untimed).
const MinSize = 16

// NoPayload is the Size of echo requests with no payload at all (ping -s 0); Size 0 is
// DefaultSize.
const NoPayload = -1

// MinUserInterval is iputils' floor on the interval for users other than root: faster (-f, -i
// below 2 ms) is a flood, which only root may send.
const MinUserInterval = 2 * time.Millisecond

// ErrFlood is returned by CheckInterval for an interval below MinUserInterval.
var ErrFlood = errors.New("cannot flood, minimal interval for user must be >= 2 ms, use -i 0.002 (or higher)")

// CheckInterval applies iputils' rule: only root (uid 0) may send faster than every 2 ms.
func CheckInterval(uid int, d time.Duration) error {
	if uid != 0 && d < MinUserInterval {
		return ErrFlood
	}
	return nil
}

// MaxSize4 and MaxSize6 are the largest payloads an IPv4 or IPv6 echo request can carry.
const (
	MaxSize4 = 65535 - 20 - 8
	MaxSize6 = 65535 - 8
)

// ErrNoSocket is returned (wrapped, with the reason) when neither a datagram
// nor a raw ICMP socket can be opened.
var ErrNoSocket = errors.New("cannot open an ICMP socket")

// ErrNotSupported is returned on systems where pinglab has no ICMP transport.
var ErrNotSupported = errors.New("not supported")

// Resolve's errors, as iputils words them (getaddrinfo's gai_strerror).
var (
	// ErrUnknownHost: the resolver says the name does not exist.
	ErrUnknownHost = errors.New("name or service not known")
	// ErrResolverFailed: the resolver could not be asked, or did not answer in time.
	ErrResolverFailed = errors.New("temporary failure in name resolution")
	// ErrFamily: the name or address has no address of the family asked for (-4, -6).
	ErrFamily = errors.New("address family for hostname not supported")
)

// Dial's errors about the path, found before anything is sent, as iputils finds them by
// connecting a UDP socket to the target.
var (
	// ErrConnect wraps the errno of a path the kernel refuses: no route (an unreachable or
	// blackhole route, no interface), or an interface that cannot reach the target.
	ErrConnect = errors.New("connect")
	// ErrBroadcast: the target is a broadcast address and Broadcast is not set, or a local
	// firewall forbids the path (the kernel says EACCES to both).
	ErrBroadcast = errors.New("do you want to ping broadcast? Then -b. If not, check your local firewall rules")
	// ErrInterface wraps why the socket could not be bound to Interface or Source.
	ErrInterface = errors.New("bad interface or source address")
)

var (
	errSize     = errors.New("payload size out of range")
	errTTL      = errors.New("ttl out of range 1..255")
	errPMTU     = errors.New("bad path MTU discovery option")
	errID       = errors.New("identifier out of range 0..65535")
	errTOS      = errors.New("type of service out of range 0..255")
	errTarget   = errors.New("no target address")
	errResolve  = errors.New("no address found")
	errShort    = errors.New("packet too short")
	errNotEcho  = errors.New("not an echo reply")
	errNotOurs  = errors.New("not one of our probes")
	errNotError = errors.New("not an ICMP error")
)

// A Config says where and how to ping.
type Config struct {
	// Target is the address to ping; an IPv4 (or IPv4-mapped) address pings over ICMP, an IPv6
	// one over ICMPv6.
	Target netip.Addr
	// Size is the payload's size in bytes; 0 means DefaultSize, NoPayload none.
	Size int
	// TTL is the time to live (IPv4) or hop limit (IPv6) of the requests; 0 keeps the system's.
	TTL int
	// Privileged forces a raw socket instead of trying a datagram socket first.
	Privileged bool
	// Socket holds the requests' TOS (ping -Q) and interface (ping -I eth0) (Linux); its TTL,
	// when set, is TTL's.
	Socket sock.Options
	// Source, when valid, is the address the requests come from (ping -I 10.0.0.1); it must
	// be of Target's family (Linux).
	Source netip.Addr
	// Mark is the socket's firewall mark (ping -m); 0 leaves it alone.
	Mark int
	// PMTU is the path MTU discovery strategy (ping -M): "do", "want", "probe" or "dont"; ""
	// keeps the system's.
	PMTU string
	// Broadcast allows a broadcast target (ping -b); without it, one is refused as iputils
	// refuses it.
	Broadcast bool
	// DontRoute sends to hosts on an attached network only (ping -r, SO_DONTROUTE).
	DontRoute bool
	// NoLoop keeps multicast probes from looping back to this host (ping -L).
	NoLoop bool
	// Pattern fills the payload after the send time and cookie (ping -p); nil: iputils' default
	// of byte i holding i.
	Pattern []byte
	// ID is the echo identifier of a raw socket (ping -e); 0 draws one at random.
	ID int
	// Names looks the name of each replying or erring address up (ping without -n, the target
	// given as a name): replies then come "From NAME (ADDR)".
	Names bool
	// UserTime times replies by the process's clock when they are read, not by the kernel's
	// receive timestamp (ping -U).
	UserTime bool
}

// size is the payload's size in bytes.
func (c *Config) size() int {
	if c.Size == NoPayload {
		return 0
	}
	return c.Size
}

func (c *Config) check() error {
	if !c.Target.IsValid() {
		return fmt.Errorf("icmpping: %w", errTarget)
	}
	c.Target = c.Target.Unmap()
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	max := MaxSize4
	if c.Target.Is6() {
		max = MaxSize6
	}
	if c.Size < NoPayload || c.Size > max {
		return fmt.Errorf("icmpping: %w: %d, want 0..%d", errSize, c.Size, max)
	}
	switch c.PMTU {
	case "", "do", "want", "probe", "dont":
	default:
		return fmt.Errorf("icmpping: %w: %q (want do, want, probe or dont)", errPMTU, c.PMTU)
	}
	if c.ID < 0 || c.ID > 65535 {
		return fmt.Errorf("icmpping: %w: %d", errID, c.ID)
	}
	if c.Socket.TOS < 0 || c.Socket.TOS > 255 {
		return fmt.Errorf("icmpping: %w: %d", errTOS, c.Socket.TOS)
	}
	if c.TTL < 0 || c.TTL > 255 {
		return fmt.Errorf("icmpping: %w: %d", errTTL, c.TTL)
	}
	return nil
}

// Resolve looks host up as ping does: network "ip4" or "ip6" restricts the family; "ip" takes
// the address getaddrinfo would put first, an IPv6 one when this host has a route for it, else
// IPv4. A literal address needs no lookup. The errors wrap ErrUnknownHost, ErrResolverFailed or
// ErrFamily.
func Resolve(ctx context.Context, network, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		a = a.Unmap()
		if (network == "ip4" && !a.Is4()) || (network == "ip6" && !a.Is6()) {
			return netip.Addr{}, fmt.Errorf("icmpping: resolve %s: %w", host, ErrFamily)
		}
		return a, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return netip.Addr{}, fmt.Errorf("icmpping: resolve %s: %w", host, ErrUnknownHost)
		}
		return netip.Addr{}, fmt.Errorf("icmpping: resolve %s: %w (%w)", host, ErrResolverFailed, err)
	}
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	switch network {
	case "ip4":
		v6 = nil
	case "ip6":
		v4 = nil
	}
	if len(v4)+len(v6) == 0 {
		return netip.Addr{}, fmt.Errorf("icmpping: resolve %s: %w", host, ErrFamily)
	}
	// glibc's default order (RFC 3484's precedence table, gai.conf): an IPv6 address the host
	// can reach comes before any IPv4 one.
	for _, a := range v6 {
		if routable(a) {
			return a, nil
		}
	}
	if len(v4) > 0 {
		return v4[0], nil
	}
	return v6[0], nil
}

// routable reports whether the host has a route to a: a UDP socket connects (sends nothing).
func routable(a netip.Addr) bool {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 1025)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// LookupName returns the name of a, as ping prints it before the address, or "" when none is
// found within a second: a slow resolver must not hold up the replies.
func LookupName(ctx context.Context, a netip.Addr) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, a.String())
	if err != nil || len(names) == 0 {
		return ""
	}
	return strings.TrimSuffix(names[0], ".")
}

// nameAddr is ping's "NAME (ADDR)"; a failed lookup prints the address twice, as getnameinfo
// falls back to the numeric form.
func nameAddr(name string, a netip.Addr) string {
	if name == "" {
		name = a.String()
	}
	return name + " (" + a.String() + ")"
}

// headerLine is HeaderLine with what -I adds: "from SRC IFACE: " before the sizes. target is
// the address as the header prints it (for IPv6, "NAME (ADDR)" with names on).
func headerLine(host, target string, v6 bool, from, iface string, size int) string {
	var b strings.Builder
	if v6 {
		fmt.Fprintf(&b, "PING %s(%s) ", host, target)
	} else {
		fmt.Fprintf(&b, "PING %s (%s) ", host, target)
	}
	if from != "" || iface != "" {
		fmt.Fprintf(&b, "from %s %s: ", from, iface)
	}
	if v6 {
		fmt.Fprintf(&b, "%d data bytes", size)
	} else {
		fmt.Fprintf(&b, "%d(%d) bytes of data.", size, size+8+20)
	}
	return b.String()
}

// HeaderLine is iputils ping's first line for the target: "PING 127.0.0.1 (127.0.0.1) 56(84)
// bytes of data." for IPv4, "PING ::1(::1) 56 data bytes" for IPv6 (no space: iputils' own).
func HeaderLine(host string, addr netip.Addr, size int) string {
	if addr.Unmap().Is4() {
		return fmt.Sprintf("PING %s (%s) %d(%d) bytes of data.", host, addr.Unmap(), size, size+8+20)
	}
	return fmt.Sprintf("PING %s(%s) %d data bytes", host, addr, size)
}

// ICMP message types the parsers need beyond icmperr's.
const (
	typeEchoReply    = 0
	typeEchoRequest  = 8
	type6EchoRequest = 128
	type6EchoReply   = 129
	protoICMP        = 1
	protoICMPv6      = 58
)

// wireSeq is the 16-bit sequence number probe seq goes out with.
func wireSeq(seq int) uint16 { return uint16(seq) }

// engineSeq maps a 16-bit sequence number back to the probe it belongs to: the latest probe at or
// before last (the highest seq sent so far) with that wire number. It returns 0 when there is none.
func engineSeq(w uint16, last int) int {
	if last < 1 {
		return 0
	}
	s := last - int(uint16(last)-w)
	if s < 1 {
		return 0
	}
	return s
}

// An echo is what the parsers find in an echo reply, or in the echo request an error quotes.
type echo struct {
	ID, Seq uint16
	// Cookie is the run's cookie from the payload, and HasCookie whether the payload was long
	// enough to hold it (an error may quote only the ICMP header).
	Cookie    [8]byte
	HasCookie bool
	// SentNs is the send time from the payload, in Unix nanoseconds, 0 when not quoted.
	SentNs int64
	// Len is the ICMP message's length (header and payload): iputils' "N bytes from".
	Len int
}

// parseEcho reads an ICMP echo message (header and payload, no IP header) of the given type.
func parseEcho(b []byte, typ byte) (echo, error) {
	if len(b) < 8 {
		return echo{}, errShort
	}
	if b[0] != typ || b[1] != 0 {
		return echo{}, errNotEcho
	}
	e := echo{ID: binary.BigEndian.Uint16(b[4:6]), Seq: binary.BigEndian.Uint16(b[6:8]), Len: len(b)}
	p := b[8:]
	if len(p) >= 16 {
		e.SentNs = int64(binary.BigEndian.Uint64(p[0:8]))
		copy(e.Cookie[:], p[8:16])
		e.HasCookie = true
	}
	return e, nil
}

// ParseReply decodes an echo reply as a raw socket reads it: with the IPv4 header for IPv4
// (v6 false), without one for ICMPv6. It returns the echo's identifier, sequence number, the
// cookie from the payload, the message length and, for IPv4, the TTL from the IP header.
func parseReply(b []byte, v6 bool) (e echo, ttl int, err error) {
	if v6 {
		e, err = parseEcho(b, type6EchoReply)
		return e, 0, err
	}
	ip, icmp, err := splitIPv4(b)
	if err != nil {
		return echo{}, 0, err
	}
	if ip[9] != protoICMP {
		return echo{}, 0, errNotEcho
	}
	e, err = parseEcho(icmp, typeEchoReply)
	return e, int(ip[8]), err
}

// splitIPv4 splits an IPv4 packet into its header and payload.
func splitIPv4(b []byte) (hdr, payload []byte, err error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, nil, errShort
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		return nil, nil, errShort
	}
	return b[:ihl], b[ihl:], nil
}

// A quoted is an ICMP error that quotes one of our echo requests.
type quoted struct {
	Err  icmperr.Error
	Echo echo
	// Dst is the quoted request's destination.
	Dst netip.Addr
}

// parseQuotedError decodes an ICMP error message (no outer IP header: for IPv4 the caller strips
// it) that quotes an echo request: destination unreachable, time exceeded, parameter problem,
// source quench and redirect for IPv4; destination unreachable, packet too big, time exceeded and
// parameter problem for ICMPv6. The quoted packet is the request's IP header and at least the
// first 8 bytes of its ICMP header.
func parseQuotedError(b []byte, v6 bool) (quoted, error) {
	if len(b) < 8 {
		return quoted{}, errShort
	}
	q := quoted{Err: icmperr.Error{V6: v6, Type: int(b[0]), Code: int(b[1])}}
	rest := b[8:]
	if v6 {
		switch b[0] {
		case icmperr.Type6DestUnreach, icmperr.Type6TimeExceeded:
		case icmperr.Type6PacketTooBig, icmperr.Type6ParamProblem:
			q.Err.Info = binary.BigEndian.Uint32(b[4:8])
		default:
			return quoted{}, errNotError
		}
		if len(rest) < 40 || rest[0]>>4 != 6 {
			return quoted{}, errShort
		}
		if rest[6] != protoICMPv6 {
			return quoted{}, errNotOurs
		}
		q.Dst = netip.AddrFrom16([16]byte(rest[24:40]))
		e, err := parseEcho(rest[40:], type6EchoRequest)
		if err != nil {
			return quoted{}, err
		}
		q.Echo = e
		return q, nil
	}
	switch b[0] {
	case icmperr.TypeDestUnreach:
		if b[1] == icmperr.CodeFragNeeded {
			q.Err.Info = uint32(binary.BigEndian.Uint16(b[6:8]))
		}
	case icmperr.TypeTimeExceeded, icmperr.TypeSourceQuench:
	case icmperr.TypeParamProblem:
		q.Err.Info = uint32(b[4])
	case icmperr.TypeRedirect:
		q.Err.Gateway = netip.AddrFrom4([4]byte(b[4:8]))
	default:
		return quoted{}, errNotError
	}
	ip, icmp, err := splitIPv4(rest)
	if err != nil {
		return quoted{}, err
	}
	if ip[9] != protoICMP {
		return quoted{}, errNotOurs
	}
	q.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
	e, err := parseEcho(icmp, typeEchoRequest)
	if err != nil {
		return quoted{}, err
	}
	q.Echo = e
	return q, nil
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// marshal builds echo request seq into b: header, then the send time, the cookie and the
// pattern, cut to the payload's size.
func (c *Conn) marshal(b []byte, seq uint16, sentNs int64) []byte {
	return marshalEcho(b, c.v6, c.id, seq, sentNs, c.cookie, c.size, c.cfg.Pattern)
}

// marshalEcho builds an echo request: header, send time, cookie and pattern up to size bytes of
// payload. The checksum is filled in for IPv4; the kernel computes ICMPv6's, and a datagram
// socket rewrites the identifier and checksum itself.
func marshalEcho(b []byte, v6 bool, id, seq uint16, sentNs int64, cookie [8]byte, size int, pattern []byte) []byte {
	b = b[:0]
	typ := byte(typeEchoRequest)
	if v6 {
		typ = type6EchoRequest
	}
	b = append(b, typ, 0, 0, 0, byte(id>>8), byte(id), byte(seq>>8), byte(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(sentNs))
	b = append(b, cookie[:]...)
	for i := 16; i < size; i++ {
		if len(pattern) > 0 {
			b = append(b, pattern[(i-16)%len(pattern)])
		} else {
			// iputils' pattern: byte i of the payload holds i.
			b = append(b, byte(i))
		}
	}
	b = b[:8+size]
	if !v6 {
		binary.BigEndian.PutUint16(b[2:4], checksum(b))
	}
	return b
}

// fromString prints an address as Packet.From wants it: "10.0.0.1", "::1".
func fromString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}
