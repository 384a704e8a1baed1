// Package pingmsg reads and writes the assignment's ping messages, the text that pinglab's UDP
// and TCP pingers share: "ping <seq> <YYYY-MM-DD HH:MM:SS.ffffff>", padded with a pattern, which
// the server echoes in upper case. Both pingers keep to it, so that pinglab's clients work
// against the handout's servers, nc and socat, and pinglab's servers against the handout's
// clients. It also resolves the "host[:port]" a pinger is given.
package pingmsg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultPort is the port of the assignment's servers.
	DefaultPort = 12000
	// MinSize is the length of the message of probe 1 with no padding:
	// "ping 1 2006-01-02 15:04:05.000000".
	MinSize = len("ping 1 ") + len(timeLayout)
	// DefaultSize is the message when no size is given: room for sequence numbers up to
	// 99,999,999 in one size, so that every reply of a run has the same length.
	DefaultSize = MinSize + 7
)

// timeLayout is the timestamp of the assignment's message (Python's str(datetime.now())).
const timeLayout = "2006-01-02 15:04:05.000000"

// pattern fills the message up to the wanted size. Lower-case letters make the server's
// upper-casing visible in a capture.
const pattern = "abcdefghijklmnopqrstuvwxyz"

var (
	// ErrBadNetwork is returned for a network that is not the pinger's ("udp4" to a TCP pinger).
	ErrBadNetwork = errors.New("bad network")
	errNoHost     = errors.New("missing host")
)

// Append appends probe seq's message to b: "ping <seq> <timestamp>", then, when that is
// shorter than size, one space and a fixed pattern up to size bytes. The message is never cut,
// so a size smaller than the message (or 0) gives the message alone.
func Append(b []byte, seq int, t time.Time, size int) []byte {
	start := len(b)
	b = append(b, "ping "...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	b = t.AppendFormat(b, timeLayout)
	if n := len(b) - start; n < size {
		b = append(b, ' ')
		for i := n + 1; i < size; i++ {
			b = append(b, pattern[(i-n-1)%len(pattern)])
		}
	}
	return b
}

// ParseSeq returns the sequence number of a ping message or its echo: b must start with
// "ping " in any case, then decimal digits, then a space or the end of b. It never panics,
// whatever b holds.
func ParseSeq(b []byte) (int, bool) {
	const prefix = "ping "
	if !HasPrefixFold(b, prefix) || len(b) == len(prefix) {
		return 0, false
	}
	seq := 0
	i := len(prefix)
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-len(prefix) >= 18 { // beyond any sequence a run can reach; keeps seq from overflowing
			return 0, false
		}
		seq = seq*10 + int(b[i]-'0')
	}
	if i == len(prefix) || seq <= 0 || (i < len(b) && b[i] != ' ') {
		return 0, false
	}
	return seq, true
}

// HasPrefixFold reports whether b starts with the lower-case ASCII prefix, in any case.
func HasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// Upper upper-cases the ASCII letters of b in place and leaves every other byte as it is.
func Upper(b []byte) {
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
}

// Family maps a pinger's network, "udp", "udp4" or "udp6" for proto "udp" (likewise for "tcp"),
// to the IP network to resolve in: "ip", "ip4" or "ip6". "" means either family.
func Family(proto, network string) (string, error) {
	switch network {
	case "", proto:
		return "ip", nil
	case proto + "4":
		return "ip4", nil
	case proto + "6":
		return "ip6", nil
	}
	return "", fmt.Errorf("%w %q: want %s, %s4 or %s6", ErrBadNetwork, network, proto, proto, proto)
}

// Resolve turns "host", "host:port", "[v6]:port" or a bare IPv6 address into an address to
// ping, with DefaultPort when none is given. proto and network are as for Family. A hostname is
// resolved and its first address of the wanted family used.
func Resolve(ctx context.Context, proto, network, hostport string) (netip.AddrPort, error) {
	family, err := Family(proto, network)
	if err != nil {
		return netip.AddrPort{}, err
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if a.Zone() != "" && !a.Is6() {
			a = a.WithZone("")
		}
		switch {
		case family == "ip4" && !a.Is4():
			return netip.AddrPort{}, fmt.Errorf("%s is not an IPv4 address (-4 given)", host)
		case family == "ip6" && !a.Is6():
			return netip.AddrPort{}, fmt.Errorf("%s is not an IPv6 address (-6 given)", host)
		}
		return netip.AddrPortFrom(a, port), nil
	}
	if strings.Contains(host, ":") {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IPv6 address (an IPv6 address with a port is written [ADDR]:PORT)", host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, family, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return netip.AddrPort{}, fmt.Errorf("cannot resolve %q: no such host", host)
		}
		return netip.AddrPort{}, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if (family == "ip4" && !a.Is4()) || (family == "ip6" && !a.Is6()) {
			continue
		}
		return netip.AddrPortFrom(a, port), nil
	}
	return netip.AddrPort{}, fmt.Errorf("%q has no %s address", host, map[string]string{"ip4": "IPv4", "ip6": "IPv6", "ip": "IP"}[family])
}

// ErrAmbiguous is what Resolve's error wraps for an address without brackets that reads both
// as an IPv6 address and as one with a port ("::1:5000"): pinglab never guesses which was meant,
// for one reading may send off the machine.
var ErrAmbiguous = errors.New("ambiguous address")

// CheckAmbiguous returns an error wrapping ErrAmbiguous, with the hint "did you mean
// [ADDR]:PORT?", when s has no brackets and reads both as an IPv6 address and as an IPv6
// address followed by ":PORT"; otherwise nil. Brackets say which was meant: "[::1]:5000" is
// port 5000 of ::1, "[::1:5000]" the address ::1:5000.
func CheckAmbiguous(s string) error {
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") < 2 {
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return nil
	}
	i := strings.LastIndex(s, ":")
	host, port := s[:i], s[i+1:]
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil
	}
	return fmt.Errorf("%w %q: did you mean [%s]:%s? (write [%s] for the address alone)", ErrAmbiguous, s, host, port, s)
}

// splitHostPort splits host[:port]. An address with more than one colon and no brackets is a
// bare IPv6 address, as ping takes it.
func splitHostPort(s string) (string, uint16, error) {
	var host, portStr string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", 0, fmt.Errorf("%q: missing ']'", s)
		}
		rest := s[end+1:]
		host = s[1:end]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", 0, fmt.Errorf("%q: unexpected %q after ']'", s, rest)
			}
			portStr = rest[1:]
			if portStr == "" {
				return "", 0, fmt.Errorf("%q: empty port", s)
			}
		}
	case strings.Count(s, ":") == 1:
		i := strings.LastIndex(s, ":")
		host, portStr = s[:i], s[i+1:]
		if portStr == "" {
			return "", 0, fmt.Errorf("%q: empty port", s)
		}
	default:
		if err := CheckAmbiguous(s); err != nil {
			return "", 0, err
		}
		host = s
	}
	if host == "" {
		return "", 0, fmt.Errorf("%w in %q", errNoHost, s)
	}
	if portStr == "" {
		return host, DefaultPort, nil
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad port %q (want 1 to 65535)", portStr)
	}
	return host, uint16(p), nil
}
