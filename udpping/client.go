package udpping

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/sock"
)

var errBadSeq = errors.New("sequence number must be positive")

// Config configures a client Conn.
type Config struct {
	// Addr is what to ping: "host", "host:port", "[v6]:port" or a bare IPv6 address. The port
	// defaults to DefaultPort.
	Addr string
	// Network is "udp" (either family), "udp4" (-4) or "udp6" (-6); "" is "udp".
	Network string
	// Size is the payload of each ping in bytes, the message padded with a pattern: from
	// MinSize to MaxSize; 0 means DefaultSize. The message is never cut: a probe whose message
	// is longer than Size (seq 10 and up with Size = MinSize) is sent longer.
	Size int
	// Socket holds the pings' TTL, TOS and interface; the zero value keeps the system's.
	Socket sock.Options
	// LocalAddr, when valid, is the address the pings come from.
	LocalAddr netip.Addr
	// OneWay asks the server for one-way receipts (pinglab's extension, in the padding of the
	// assignment's message), so that each lost probe is told lost on the way out or back. It
	// needs a Size of at least OneWaySize, the default then. A server that does not keep the
	// extension echoes the pings as ever, and the run has round-trip loss only.
	OneWay bool
}

// OneWaySize is the smallest Size, and the default, of a client with Config.OneWay.
const OneWaySize = pingmsg.OneWaySize

var errSizeLarge = fmt.Errorf("size above %d, the largest UDP payload", MaxSize)

// A Conn is a connected UDP socket that sends pings and reads their echoes and the ICMP
// errors that come back for them. It implements probe.Transport: Send and Receive may be called
// at the same time, from one goroutine each.
type Conn struct {
	conn   *net.UDPConn
	remote netip.AddrPort
	from   string // remote as printed in reply lines
	size   int
	maxSeq atomic.Int64 // highest seq sent; replies above it are not ours
	sbuf   []byte       // Send's
	oneWay bool
	id     uint64 // the run's, in one-way requests

	sys recvState // Receive's, per OS
}

var _ probe.Transport = (*Conn)(nil)

// Dial resolves cfg.Addr and connects a UDP socket to it. On Linux the socket reports ICMP
// errors for its datagrams (IP_RECVERR / IPV6_RECVERR) and the kernel's receive time of each
// reply (SO_TIMESTAMPNS).
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	size, err := pingmsg.ClientSize(cfg.Size, MaxSize, cfg.OneWay, errSizeLarge)
	if err != nil {
		return nil, fmt.Errorf("udpping: %w", err)
	}
	remote, err := Resolve(ctx, cfg.Network, cfg.Addr)
	if err != nil {
		return nil, err
	}
	network := "udp4"
	if remote.Addr().Is6() {
		network = "udp6"
	}
	d := net.Dialer{Control: cfg.Socket.Control(controlSocket)}
	if cfg.LocalAddr.IsValid() {
		d.LocalAddr = &net.UDPAddr{IP: cfg.LocalAddr.AsSlice(), Zone: cfg.LocalAddr.Zone()}
	}
	nc, err := d.DialContext(ctx, network, remote.String())
	if err != nil {
		return nil, fmt.Errorf("udpping: dial %s: %w", remote, err)
	}
	c := &Conn{
		conn:   nc.(*net.UDPConn),
		remote: remote,
		from:   remote.String(),
		size:   size,
		sbuf:   make([]byte, 0, size+32),
		oneWay: cfg.OneWay,
		id:     rand.Uint64(),
	}
	if err := c.sys.init(c.conn); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("udpping: %w", err)
	}
	return c, nil
}

// RemoteAddr returns the address pinged.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// LocalAddr returns the socket's own address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Size returns the payload size of a ping (of probe 1's: later ones may be a few bytes longer).
func (c *Conn) Size() int { return c.size }

// Close closes the socket.
func (c *Conn) Close() error { return c.conn.Close() }

// Send sends ping seq and returns the time it left, the time written in it.
func (c *Conn) Send(ctx context.Context, seq int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	if seq <= 0 {
		return time.Time{}, fmt.Errorf("udpping: %w, not %d", errBadSeq, seq)
	}
	if int64(seq) > c.maxSeq.Load() {
		c.maxSeq.Store(int64(seq))
	}
	now := time.Now()
	c.sbuf = c.message(seq, now)
	// An ICMP error for an earlier ping leaves its errno pending on the socket, and the next
	// send returns it instead of sending (the details wait in the error queue, where Receive
	// reads them). Such an errno is not this ping's, so send again; a few times at most, since
	// each try consumes one.
	var err error
	for range 8 {
		if _, err = c.conn.Write(c.sbuf); err == nil || !sock.PendingErrno(err) {
			break
		}
	}
	if err == nil {
		return now, nil
	}
	if e := icmperr.FromErrno(err, c.remote.Addr().Is6(), netip.Addr{}); e != nil {
		return now, fmt.Errorf("udpping: send ping %d: %w", seq, e)
	}
	return now, fmt.Errorf("udpping: send ping %d: %w", seq, err)
}

// reply makes the Packet of a datagram read from the socket, or reports false when it is not
// an echo of one of our pings.
func (c *Conn) reply(data []byte, at time.Time) (probe.Packet, bool) {
	seq, ok := pingmsg.ParseSeq(data)
	if !ok || int64(seq) > c.maxSeq.Load() {
		return c.status(data, at)
	}
	return probe.Packet{
		Seq:     seq,
		Kind:    probe.KindReply,
		Time:    at,
		Bytes:   len(data),
		From:    c.from,
		Data:    append([]byte(nil), data...),
		Receipt: c.receipt(data),
	}, true
}
