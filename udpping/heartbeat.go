package udpping

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/sock"
)

// HeartbeatConfig configures a heartbeat client.
type HeartbeatConfig struct {
	// Addr is the server: "host", "host:port", "[v6]:port" or a bare IPv6 address; the port
	// defaults to DefaultPort.
	Addr string
	// Network is "udp", "udp4" or "udp6"; "" is "udp".
	Network string
	// Interval is the time between heartbeats, on a fixed schedule; 0 means one second.
	Interval time.Duration
	// Count is how many heartbeats to send; 0 sends until the context is done.
	Count int
	// Sent, when set, is called after each heartbeat with its number, the time written in it
	// and the error that kept it from leaving, if any (a heartbeat that cannot be sent is
	// skipped, as a lost one would be, and its number is not used again).
	Sent func(seq int, at time.Time, err error)
}

var errBadInterval = errors.New("heartbeat interval must not be negative")

// A HeartbeatConn sends the UDP heartbeat of the handout's optional exercise: "heartbeat <seq>
// <timestamp>" at a steady interval, waiting for no answer. pinglab's server follows them.
type HeartbeatConn struct {
	conn   *net.UDPConn
	remote netip.AddrPort
	cfg    HeartbeatConfig
}

// DialHeartbeat resolves cfg.Addr and connects a UDP socket to it.
func DialHeartbeat(ctx context.Context, cfg HeartbeatConfig) (*HeartbeatConn, error) {
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("udpping: %w", errBadInterval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Count < 0 {
		return nil, fmt.Errorf("udpping: heartbeat count %d is negative", cfg.Count)
	}
	remote, err := Resolve(ctx, cfg.Network, cfg.Addr)
	if err != nil {
		return nil, err
	}
	network := "udp4"
	if remote.Addr().Is6() {
		network = "udp6"
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, remote.String())
	if err != nil {
		return nil, fmt.Errorf("udpping: dial %s: %w", remote, err)
	}
	return &HeartbeatConn{conn: nc.(*net.UDPConn), remote: remote, cfg: cfg}, nil
}

// RemoteAddr returns the server's address.
func (h *HeartbeatConn) RemoteAddr() netip.AddrPort { return h.remote }

// LocalAddr returns the socket's own address: the client as the server names it.
func (h *HeartbeatConn) LocalAddr() netip.AddrPort {
	return h.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket.
func (h *HeartbeatConn) Close() error { return h.conn.Close() }

// Run sends the heartbeats, heartbeat k at start + (k-1)·Interval, until Count were sent or
// ctx is done, which is a normal end; it returns how many it sent.
func (h *HeartbeatConn) Run(ctx context.Context) (int, error) {
	buf := make([]byte, 0, 64)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	sent := 0
	for seq := 1; h.cfg.Count == 0 || seq <= h.cfg.Count; seq++ {
		select {
		case <-ctx.Done():
			return sent, nil
		case <-timer.C:
		}
		now := time.Now()
		buf = pingmsg.AppendHeartbeat(buf[:0], seq, now)
		var err error
		// Nobody listening leaves an ICMP error's errno on the socket, which the next write
		// returns; it belongs to an earlier heartbeat, so write again (once per errno).
		for range 4 {
			if _, err = h.conn.Write(buf); err == nil || !sock.PendingErrno(err) {
				break
			}
		}
		if err == nil {
			sent++
		}
		if h.cfg.Sent != nil {
			h.cfg.Sent(seq, now, err)
		}
		timer.Reset(time.Until(start.Add(time.Duration(seq) * h.cfg.Interval)))
	}
	return sent, nil
}
