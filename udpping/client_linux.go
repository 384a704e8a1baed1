package udpping

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
)

// controlSocket asks, before connect, for ICMP errors on the error queue and for the kernel's
// receive timestamp of each datagram.
func controlSocket(network, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		level, opt, name := unix.IPPROTO_IP, unix.IP_RECVERR, "IP_RECVERR"
		if network == "udp6" {
			level, opt, name = unix.IPPROTO_IPV6, unix.IPV6_RECVERR, "IPV6_RECVERR"
		}
		if serr = unix.SetsockoptInt(int(fd), level, opt, 1); serr != nil {
			serr = fmt.Errorf("udpping: set %s: %w", name, serr)
			return
		}
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); serr != nil {
			serr = fmt.Errorf("udpping: set SO_TIMESTAMPNS: %w", serr)
		}
	})
	if err != nil {
		return err
	}
	return serr
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

// aLongTimeAgo is a read deadline in the past, which wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

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
	// A deadline in the past wakes the poller when ctx ends. Once it fired it is cleared again,
	// after the callback is done, so that it cannot cut short a later call with a live ctx.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = r.conn.SetReadDeadline(aLongTimeAgo)
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
			_ = r.conn.SetReadDeadline(time.Time{})
		}
	}()
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
		n, oobn, flags, err := recvmsg(fd, r.buf, r.oob, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if flags&unix.MSG_TRUNC != 0 {
				continue // larger than any ping: not ours
			}
			if p, ok := c.reply(r.buf[:n], timestamp(r.oob[:oobn])); ok {
				return p, true, nil
			}
			continue
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			// Nothing to read; an ICMP error may still wait in the error queue, its pending
			// errno already taken by a send.
		case pendingErrno(err) || err == unix.EMSGSIZE:
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
		n, oobn, _, err := recvmsg(fd, r.buf, r.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
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
		p := probe.Packet{Seq: seq, Kind: probe.KindError, Time: timestamp(r.oob[:oobn]), Err: e}
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

// recvmsg is recvmsg(2) without the allocations of unix.Recvmsg (a connected socket needs no
// source address). It returns the payload length, the control length and the flags.
func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, rflags int, err error) {
	var iov unix.Iovec
	iov.Base = &p[0]
	iov.SetLen(len(p))
	var msg unix.Msghdr
	msg.Iov = &iov
	msg.SetIovlen(1)
	msg.Control = &oob[0]
	msg.SetControllen(len(oob))
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// timestamp returns the SCM_TIMESTAMPNS time in a read's control messages, or the zero Time.
func timestamp(oob []byte) time.Time {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):l]
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}
}
