package udpping

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/sock"
)

// controlSocket asks, before connect, for ICMP errors on the error queue and for the kernel's
// receive timestamp of each datagram.
func controlSocket(network, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = sock.SetRecvErr(int(fd), network == "udp6"); serr == nil {
			serr = sock.SetTimestamps(int(fd))
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("udpping: %w", serr)
	}
	return nil
}

// recvState is what Receive keeps between calls: its buffers, and errors read from the error
// queue but not yet returned.
type recvState struct {
	conn    *net.UDPConn
	raw     syscall.RawConn
	v6      bool
	buf     []byte
	oob     []byte
	pending []probe.Packet
}

func (r *recvState) init(conn *net.UDPConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	r.conn, r.raw = conn, raw
	r.v6 = conn.RemoteAddr().(*net.UDPAddr).AddrPort().Addr().Is6()
	r.buf = make([]byte, 1<<16)
	r.oob = make([]byte, 512)
	return nil
}

// Receive returns the next echo of one of our pings or ICMP error for one. Datagrams that are
// not echoes of our pings are skipped. It blocks in the runtime's poller, not spinning, and
// returns ctx.Err() soon after ctx is done.
func (c *Conn) Receive(ctx context.Context) (probe.Packet, error) {
	r := &c.sys
	if len(r.pending) > 0 {
		p := r.pending[0]
		r.pending = r.pending[1:]
		return p, nil
	}
	if err := ctx.Err(); err != nil {
		return probe.Packet{}, err
	}
	defer sock.WakeOnDone(ctx, r.conn)()
	var (
		p    probe.Packet
		got  bool
		rerr error
	)
	err := r.raw.Read(func(fd uintptr) bool {
		p, got, rerr = c.readOnce(int(fd))
		return got || rerr != nil
	})
	switch {
	case ctx.Err() != nil:
		return probe.Packet{}, ctx.Err()
	case err != nil:
		return probe.Packet{}, fmt.Errorf("udpping: receive: %w", err)
	case rerr != nil:
		return probe.Packet{}, fmt.Errorf("udpping: receive: %w", rerr)
	}
	return p, nil
}

// readOnce reads what the socket holds without blocking: a datagram, or else an entry of the
// error queue. It reports got=false when there is nothing (or only what is not ours) to read.
func (c *Conn) readOnce(fd int) (probe.Packet, bool, error) {
	r := &c.sys
	for {
		n, oobn, flags, _, err := sock.Recvmsg(fd, r.buf, r.oob, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if flags&unix.MSG_TRUNC != 0 {
				continue // larger than any ping: not ours
			}
			if p, ok := c.reply(r.buf[:n], sock.ParseControl(r.oob[:oobn]).Time); ok {
				return p, true, nil
			}
			continue
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			// Nothing to read; an ICMP error may still wait in the error queue, its pending
			// errno already taken by a send.
		case sock.PendingErrno(err):
			// The errno of an ICMP error (or of a local one): its details are in the error
			// queue, read next.
		default:
			return probe.Packet{}, false, err
		}
		got, err := c.readErrQueue(fd)
		if err != nil {
			return probe.Packet{}, false, err
		}
		if !got {
			return probe.Packet{}, false, nil
		}
		p := r.pending[0]
		r.pending = r.pending[1:]
		return p, true, nil
	}
}

// readErrQueue moves every entry of the socket's error queue that quotes one of our pings to
// r.pending, and reports whether there was any.
func (c *Conn) readErrQueue(fd int) (bool, error) {
	r := &c.sys
	got := false
	for {
		n, oobn, _, _, err := sock.Recvmsg(fd, r.buf, r.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return got, nil
		case err != nil:
			return got, err
		}
		e, perr := icmperr.ParseErrQueue(r.oob[:oobn])
		if perr != nil {
			continue
		}
		// The kernel hands back the start of the datagram the error is about. A quote cut
		// short may end inside the number, so it must reach the space after it.
		seq, ok := pingmsg.ParseSeq(r.buf[:n])
		if !ok || int64(seq) > c.maxSeq.Load() || !quotesWholeSeq(r.buf[:n]) {
			continue
		}
		p := probe.Packet{Seq: seq, Kind: probe.KindError, Time: sock.ParseControl(r.oob[:oobn]).Time, Err: e}
		if e.From.IsValid() {
			p.From = e.From.String()
		}
		r.pending = append(r.pending, p)
		got = true
	}
}

// quotesWholeSeq reports whether b holds the space that ends the sequence number.
func quotesWholeSeq(b []byte) bool {
	for _, ch := range b[len("ping "):] {
		if ch == ' ' {
			return true
		}
	}
	return false
}
