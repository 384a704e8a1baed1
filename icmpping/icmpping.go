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

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

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

// The echo types of each family, and the protocol numbers x/net/icmp parses them by.
var (
	protoICMP   = ipv4.ICMPTypeEcho.Protocol()
	protoICMPv6 = ipv6.ICMPTypeEchoRequest.Protocol()
)

// echoTypes returns the request and reply types of the family.
func echoTypes(v6 bool) (request, reply icmp.Type) {
	if v6 {
		return ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	return ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
}

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
func parseEcho(b []byte, typ icmp.Type) (echo, error) {
	if len(b) < 8 {
		return echo{}, errShort
	}
	m, err := icmp.ParseMessage(typ.Protocol(), b)
	if err != nil {
		return echo{}, fmt.Errorf("%w: %w", errShort, err)
	}
	body, ok := m.Body.(*icmp.Echo)
	if m.Type != typ || m.Code != 0 || !ok {
		return echo{}, errNotEcho
	}
	e := echo{ID: uint16(body.ID), Seq: uint16(body.Seq), Len: len(b)}
	// The payload is pinglab's own: the send time, then the run's cookie.
	if p := body.Data; len(p) >= MinSize {
		e.SentNs = int64(binary.BigEndian.Uint64(p[0:8]))
		copy(e.Cookie[:], p[8:16])
		e.HasCookie = true
	}
	return e, nil
}

// parseReply decodes an echo reply as a raw socket reads it: with the IPv4 header for IPv4
// (v6 false), without one for ICMPv6. It returns the echo's identifier, sequence number, the
// cookie from the payload, the message length and, for IPv4, the TTL from the IP header.
func parseReply(b []byte, v6 bool) (e echo, ttl int, err error) {
	_, reply := echoTypes(v6)
	if v6 {
		e, err = parseEcho(b, reply)
		return e, 0, err
	}
	h, rest, err := splitIPv4(b)
	if err != nil {
		return echo{}, 0, err
	}
	if h.Protocol != protoICMP {
		return echo{}, 0, errNotEcho
	}
	e, err = parseEcho(rest, reply)
	return e, h.TTL, err
}

// splitIPv4 splits an IPv4 packet, as a raw socket reads it, into its header and payload.
func splitIPv4(b []byte) (*ipv4.Header, []byte, error) {
	h, err := ipv4.ParseHeader(b)
	if err != nil || h.Version != 4 {
		return nil, nil, errShort
	}
	return h, b[h.Len:], nil
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
	proto := protoICMP
	if v6 {
		proto = protoICMPv6
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil {
		return quoted{}, fmt.Errorf("%w: %w", errShort, err)
	}
	q := quoted{Err: icmperr.Error{V6: v6, Code: m.Code}}
	var inner []byte
	switch body := m.Body.(type) {
	case *icmp.DstUnreach:
		inner = body.Data
		if !v6 && m.Code == icmperr.CodeFragNeeded {
			// RFC 1191's next-hop MTU, in the header's second half: x/net's DstUnreach
			// keeps no field for it.
			q.Err.Info = uint32(binary.BigEndian.Uint16(b[6:8]))
		}
	case *icmp.TimeExceeded:
		inner = body.Data
	case *icmp.PacketTooBig:
		inner, q.Err.Info = body.Data, uint32(body.MTU)
	case *icmp.ParamProb:
		inner, q.Err.Info = body.Data, uint32(body.Pointer)
	case *icmp.RawBody:
		// ICMPv4 redirect (the gateway) and source quench (unused): x/net has no types of
		// its own for them; the quote follows the 4 bytes.
		if v6 || (m.Type != ipv4.ICMPTypeRedirect && m.Type != ipv4.ICMPType(icmperr.TypeSourceQuench)) || len(body.Data) < 4 {
			return quoted{}, errNotError
		}
		if m.Type == ipv4.ICMPTypeRedirect {
			q.Err.Gateway = netip.AddrFrom4([4]byte(body.Data[:4]))
		}
		inner = body.Data[4:]
	default:
		return quoted{}, errNotError
	}
	request, _ := echoTypes(v6)
	if v6 {
		q.Err.Type = int(m.Type.(ipv6.ICMPType))
		h, err := ipv6.ParseHeader(inner)
		if err != nil || h.Version != 6 || len(inner) < ipv6.HeaderLen {
			return quoted{}, errShort
		}
		if h.NextHeader != protoICMPv6 {
			return quoted{}, errNotOurs
		}
		q.Dst, _ = netip.AddrFromSlice(h.Dst)
		e, err := parseEcho(inner[ipv6.HeaderLen:], request)
		if err != nil {
			return quoted{}, err
		}
		q.Echo = e
		return q, nil
	}
	q.Err.Type = int(m.Type.(ipv4.ICMPType))
	h, err := icmp.ParseIPv4Header(inner)
	if err != nil {
		return quoted{}, errShort
	}
	if h.Protocol != protoICMP {
		return quoted{}, errNotOurs
	}
	q.Dst, _ = netip.AddrFromSlice(h.Dst.To4())
	e, err := parseEcho(inner[h.Len:], request)
	if err != nil {
		return quoted{}, err
	}
	q.Echo = e
	return q, nil
}

// marshal builds echo request seq into c's send buffer.
func (c *Conn) marshal(b []byte, seq uint16, sentNs int64) []byte {
	return marshalEcho(b, c.v6, c.id, seq, sentNs, c.cookie, c.size, c.cfg.Pattern)
}

// marshalEcho builds an echo request whose payload is the send time, the cookie and the pattern,
// cut to size bytes. x/net/icmp computes the checksum for IPv4; for ICMPv6 the kernel does, and
// a datagram socket rewrites the identifier and checksum itself. b is the payload's buffer,
// reused from call to call.
func marshalEcho(b []byte, v6 bool, id, seq uint16, sentNs int64, cookie [8]byte, size int, pattern []byte) []byte {
	b = binary.BigEndian.AppendUint64(b[:0], uint64(sentNs))
	b = append(b, cookie[:]...)
	for i := MinSize; i < size; i++ {
		if len(pattern) > 0 {
			b = append(b, pattern[(i-MinSize)%len(pattern)])
		} else {
			// iputils' pattern: byte i of the payload holds i.
			b = append(b, byte(i))
		}
	}
	request, _ := echoTypes(v6)
	m := icmp.Message{Type: request, Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: b[:size]}}
	out, err := m.Marshal(nil)
	if err != nil {
		// Marshal fails only on a body it does not know; an Echo it always knows.
		panic("icmpping: marshal echo: " + err.Error())
	}
	return out
}

// fromString prints an address as Packet.From wants it: "10.0.0.1", "::1".
func fromString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}
