//go:build !linux

package icmpping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/sock"
)

// A Conn sends ICMP or ICMPv6 echo requests to one target and reads what comes back. Outside
// Linux it is the portable one of golang.org/x/net/icmp: no kernel timestamps, no TTL of
// replies, and ICMP errors only where the system hands them to the socket.
type Conn struct {
	pc     *icmp.PacketConn
	v6     bool
	raw    bool
	target netip.Addr
	dst    net.Addr
	id     uint16
	cookie [8]byte
	size   int
	last   atomic.Int64
	wbuf   []byte
	rbuf   []byte
	cfg    Config
}

// Dial opens an ICMP socket for cfg.Target: a datagram socket where the system has them (macOS)
// unless cfg.Privileged, else a raw one.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if !cfg.Socket.IsZero() || cfg.Source.IsValid() || cfg.Mark != 0 || cfg.PMTU != "" || cfg.Broadcast || cfg.DontRoute || cfg.NoLoop || cfg.ID != 0 {
		return nil, fmt.Errorf("icmpping: %w: tos, interface, source, mark, -M, -b, -r, -L and -e on %s/%s", ErrNotSupported, runtime.GOOS, runtime.GOARCH)
	}
	c := &Conn{v6: cfg.Target.Is6(), target: cfg.Target, size: cfg.size(), cfg: cfg,
		wbuf: make([]byte, 0, 8+cfg.size()), rbuf: make([]byte, 65536)}
	dgram, raw, any := "udp4", "ip4:icmp", "0.0.0.0"
	if c.v6 {
		dgram, raw, any = "udp6", "ip6:ipv6-icmp", "::"
	}
	var dgramErr, rawErr error
	// x/net/icmp has datagram ICMP sockets on Darwin and Linux only.
	if !cfg.Privileged && runtime.GOOS != "windows" {
		c.pc, dgramErr = icmp.ListenPacket(dgram, any)
	}
	if c.pc == nil {
		c.raw = true
		if c.pc, rawErr = icmp.ListenPacket(raw, any); rawErr != nil {
			return nil, noSocketErrorOther(dgramErr, rawErr)
		}
	}
	if c.raw {
		c.dst = &net.IPAddr{IP: cfg.Target.AsSlice()}
	} else {
		c.dst = &net.UDPAddr{IP: cfg.Target.AsSlice()}
	}
	if _, err := rand.Read(c.cookie[:]); err != nil {
		c.pc.Close()
		return nil, fmt.Errorf("icmpping: cookie: %w", err)
	}
	var id [2]byte
	_, _ = rand.Read(id[:])
	c.id = binary.BigEndian.Uint16(id[:])
	if cfg.TTL > 0 {
		if err := c.SetTTL(cfg.TTL); err != nil {
			c.pc.Close()
			return nil, err
		}
	}
	return c, nil
}

func noSocketErrorOther(dgramErr, rawErr error) error {
	var why []string
	if dgramErr != nil {
		why = append(why, "datagram socket: "+dgramErr.Error())
	}
	why = append(why, "raw socket: "+rawErr.Error())
	return fmt.Errorf("icmpping: %w on %s/%s: %s",
		ErrNoSocket, runtime.GOOS, runtime.GOARCH, strings.Join(why, "; "))
}

// Raw reports whether c uses a raw socket rather than a datagram one.
func (c *Conn) Raw() bool { return c.raw }

// HeaderLine is iputils ping's first line for this Conn; host is the target as given.
func (c *Conn) HeaderLine(host string) string {
	return headerLine(host, c.target.String(), c.v6, "", "", c.size)
}

// Untimed reports whether the payload is too short for the send time (under MinSize bytes).
func (c *Conn) Untimed() bool { return c.size < MinSize }

// SetTTL sets the TTL (IPv4) or hop limit (IPv6) of the requests sent from now on.
func (c *Conn) SetTTL(ttl int) error {
	if ttl < 1 || ttl > 255 {
		return fmt.Errorf("icmpping: %w: %d", errTTL, ttl)
	}
	var err error
	if c.v6 {
		err = c.pc.IPv6PacketConn().SetHopLimit(ttl)
	} else {
		err = c.pc.IPv4PacketConn().SetTTL(ttl)
	}
	if err != nil {
		return fmt.Errorf("icmpping: set ttl %d on %s/%s: %w", ttl, runtime.GOOS, runtime.GOARCH, err)
	}
	return nil
}

// Close closes the socket; a blocked Receive returns.
func (c *Conn) Close() error { return c.pc.Close() }

// Send sends echo request seq.
func (c *Conn) Send(ctx context.Context, seq int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	if int64(seq) > c.last.Load() {
		c.last.Store(int64(seq))
	}
	now := time.Now()
	c.wbuf = c.marshal(c.wbuf, wireSeq(seq), now.UnixNano())
	if _, err := c.pc.WriteTo(c.wbuf, c.dst); err != nil {
		return time.Time{}, fmt.Errorf("icmpping: send: %w", err)
	}
	return now, nil
}

// Receive returns the next reply to, or ICMP error about, one of this Conn's probes.
func (c *Conn) Receive(ctx context.Context) (probe.Packet, error) {
	if err := ctx.Err(); err != nil {
		return probe.Packet{}, err
	}
	_ = c.pc.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = c.pc.SetReadDeadline(sock.ALongTimeAgo) })
	defer stop()
	for {
		n, peer, err := c.pc.ReadFrom(c.rbuf)
		if ctx.Err() != nil {
			return probe.Packet{}, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = c.pc.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return probe.Packet{}, fmt.Errorf("icmpping: receive: %w", err)
		}
		if p, ok := c.packet(c.rbuf[:n], peer); ok {
			return p, nil
		}
	}
}

func (c *Conn) ours(e echo, needCookie bool) int {
	if (e.HasCookie && e.Cookie != c.cookie) || (needCookie && !e.HasCookie) {
		return 0
	}
	return engineSeq(e.Seq, int(c.last.Load()))
}

// packet reads an ICMP message (x/net/icmp strips the IPv4 header).
func (c *Conn) packet(b []byte, peer net.Addr) (probe.Packet, bool) {
	var src netip.Addr
	switch a := peer.(type) {
	case *net.UDPAddr:
		src, _ = netip.AddrFromSlice(a.IP)
	case *net.IPAddr:
		src, _ = netip.AddrFromSlice(a.IP)
	}
	src = src.Unmap()
	_, reply := echoTypes(c.v6)
	if e, err := parseEcho(b, reply); err == nil {
		if c.raw && e.ID != c.id {
			return probe.Packet{}, false
		}
		seq := c.ours(e, true)
		if seq == 0 {
			return probe.Packet{}, false
		}
		return probe.Packet{Seq: seq, Kind: probe.KindReply, Bytes: e.Len, From: fromString(src)}, true
	}
	q, err := parseQuotedError(b, c.v6)
	if err != nil || (c.raw && q.Echo.ID != c.id) || q.Dst.Unmap() != c.target {
		return probe.Packet{}, false
	}
	seq := c.ours(q.Echo, false)
	if seq == 0 {
		return probe.Packet{}, false
	}
	ie := q.Err
	ie.From = src
	return probe.Packet{Seq: seq, Kind: probe.KindError, Bytes: len(b), From: fromString(src), Err: &ie}, true
}

func dialUDPTracer(cfg TraceConfig) (tracer, error) {
	return nil, fmt.Errorf("icmpping: UDP traceroute is %w on %s/%s (it reads the Linux error queue)", ErrNotSupported, runtime.GOOS, runtime.GOARCH)
}

func newSocketTracer(cfg TraceConfig) (tracer, error) {
	return nil, fmt.Errorf("icmpping: %s traceroute is %w on %s/%s (it reads the Linux error queue)", cfg.Proto, ErrNotSupported, runtime.GOOS, runtime.GOARCH)
}
