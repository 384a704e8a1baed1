// Package tcpping implements the TCP pinger of the classic networking lab: a Server that runs a
// goroutine per connection (the assignment's "threaded server") and echoes what it reads in
// upper case while it emulates loss the way the handout's server does (answering "LOST" and
// closing the connection) or quietly, and a client transport, Client, for pinglab's probe engine
// that sends the assignment's text "ping <seq> <YYYY-MM-DD HH:MM:SS.ffffff>" over one kept
// connection or a new connection per ping.
//
// The wire format is the assignment's, newline-terminated, so that pinglab's client works
// against the handout's server, nc or socat, and pinglab's server against the handout's client,
// which sends one message per connection and no newline.
package tcpping

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

const (
	// DefaultPort is the port of the assignment's server.
	DefaultPort = pingmsg.DefaultPort
	// MinSize is the length of the message of probe 1 with no padding:
	// "ping 1 2006-01-02 15:04:05.000000".
	MinSize = pingmsg.MinSize
	// DefaultSize is the message when none is given, as over UDP: room for sequence numbers
	// up to 99,999,999 in one size, so that every reply of a run has the same length.
	DefaultSize = pingmsg.DefaultSize
	// MaxSize is the largest message the client sends. It stays below the server's default
	// MaxLineLength, so that pinglab's client and server always agree.
	MaxSize = 65507
)

// AppendPing appends probe seq's message to b: "ping <seq> <timestamp>", then, when that is
// shorter than size, one space and a fixed pattern up to size bytes, then "\n". The newline is
// not counted in size, so that -s means the same over TCP as over UDP. The message is never
// cut: a size smaller than the message (or 0) gives the message alone.
func AppendPing(b []byte, seq int, t time.Time, size int) []byte {
	return append(pingmsg.Append(b, seq, t, size), '\n')
}

// Resolve turns "host", "host:port", "[v6]:port" or a bare IPv6 address into an address to
// ping, with DefaultPort when none is given. network is "tcp" (either family), "tcp4" or
// "tcp6". A hostname is resolved and its first address of the wanted family used.
func Resolve(ctx context.Context, network, hostport string) (netip.AddrPort, error) {
	ap, err := pingmsg.Resolve(ctx, "tcp", network, hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("tcpping: %w", err)
	}
	return ap, nil
}
