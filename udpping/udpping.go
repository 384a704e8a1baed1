// Package udpping implements the UDP pinger of the classic networking lab: a Server that echoes
// each datagram back in upper case while it emulates a lossy, slow network (a random share
// dropped, replies delayed with jitter), and a client transport, Conn, for pinglab's probe
// engine that sends the assignment's text "ping <seq> <YYYY-MM-DD HH:MM:SS.ffffff>" and reads
// the echoes and the ICMP errors that come back for it.
//
// The wire format is the assignment's, so that pinglab's client works against the handout's
// server or any plain echo server (socat, for instance), and pinglab's server against the
// handout's client.
package udpping

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

const (
	// DefaultPort is the port of the assignment's server.
	DefaultPort = pingmsg.DefaultPort
	// MaxSize is the largest UDP payload over IPv4 (65535 - 20 - 8), and pinglab's limit for
	// both families so that one size works everywhere.
	MaxSize = 65507
	// MinSize is the length of the message of probe 1 with no padding:
	// "ping 1 2006-01-02 15:04:05.000000".
	MinSize = pingmsg.MinSize
	// DefaultSize is the payload when none is given: room for sequence numbers up to
	// 99,999,999 in one size, so that every reply of a run has the same length.
	DefaultSize = pingmsg.DefaultSize
)

// Resolve turns "host", "host:port", "[v6]:port" or a bare IPv6 address into an address to
// ping, with DefaultPort when none is given. network is "udp" (either family), "udp4" or
// "udp6". A hostname is resolved and its first address of the wanted family used.
func Resolve(ctx context.Context, network, hostport string) (netip.AddrPort, error) {
	ap, err := pingmsg.Resolve(ctx, "udp", network, hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("udpping: %w", err)
	}
	return ap, nil
}
