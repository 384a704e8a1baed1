package icmpping

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/sock"
)

// udpTracer sends UDP probes, one destination port per probe as classic traceroute does, and
// reads the ICMP errors they meet from the socket's error queue: no privileges needed.
type udpTracer struct {
	f         *os.File
	rc        syscall.RawConn
	v6        bool
	cfg       TraceConfig
	payload   []byte
	rbuf, oob []byte
}

func dialUDPTracer(cfg TraceConfig) (*udpTracer, error) {
	v6 := cfg.Target.Is6()
	family, level, opt := unix.AF_INET, unix.SOL_IP, unix.IP_RECVERR
	if v6 {
		family, level, opt = unix.AF_INET6, unix.SOL_IPV6, unix.IPV6_RECVERR
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("icmpping: trace: udp socket: %w", err)
	}
	for _, o := range [][2]int{{level, opt}, {unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}} {
		if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("icmpping: trace: setsockopt: %w", err)
		}
	}
	if err := traceOptions(fd, &cfg); err != nil {
		unix.Close(fd)
		return nil, err
	}
	t := &udpTracer{f: os.NewFile(uintptr(fd), "udp-trace"), v6: v6, cfg: cfg,
		payload: make([]byte, cfg.payload()), rbuf: make([]byte, 2048), oob: make([]byte, 512)}
	// traceroute's payload is 0x40, 0x41 ...; any bytes would do.
	for i := range t.payload {
		t.payload[i] = byte(0x40 + i)
	}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("icmpping: trace: %w", err)
	}
	return t, nil
}

func (t *udpTracer) Close() error { return t.f.Close() }

func (t *udpTracer) sockaddr(seq int) unix.Sockaddr {
	port := t.cfg.Port + seq - 1
	if t.v6 {
		return &unix.SockaddrInet6{Addr: t.cfg.Target.As16(), Port: port}
	}
	return &unix.SockaddrInet4{Addr: t.cfg.Target.As4(), Port: port}
}

func (t *udpTracer) send(ctx context.Context, seq, ttl int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	var serr error
	now := time.Now()
	err := t.rc.Write(func(fd uintptr) bool {
		if serr = setTTL(int(fd), t.v6, ttl); serr != nil {
			return true
		}
		// As in Conn.Send: a pending error of an earlier probe fails one send.
		for range 3 {
			now = time.Now()
			if serr = unix.Sendto(int(fd), t.payload, 0, t.sockaddr(seq)); !sock.PendingErrno(serr) {
				break
			}
		}
		return serr != unix.EAGAIN
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("icmpping: trace: send: %w", err)
	}
	if serr != nil {
		if e := sendError(serr, t.v6); e != nil {
			return now, e
		}
		return time.Time{}, fmt.Errorf("icmpping: trace: send: %w", serr)
	}
	return now, nil
}

// seqOf maps a probe's destination port back to its sequence number; 0 when it is not ours.
func (t *udpTracer) seqOf(sa unix.Sockaddr) int {
	port := 0
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		port = sa.Port
	case *unix.SockaddrInet6:
		port = sa.Port
	}
	if port < t.cfg.Port || sockaddrAddr(sa) != t.cfg.Target {
		return 0
	}
	return port - t.cfg.Port + 1
}

func (t *udpTracer) Receive(ctx context.Context) (probe.Packet, error) {
	if err := ctx.Err(); err != nil {
		return probe.Packet{}, err
	}
	_ = t.f.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = t.f.SetReadDeadline(sock.ALongTimeAgo) })
	defer stop()
	for {
		var pkt probe.Packet
		var got bool
		var rerr error
		err := t.rc.Read(func(fd uintptr) bool {
			pkt, got, rerr = t.readOnce(int(fd))
			return got || rerr != nil
		})
		if ctx.Err() != nil {
			return probe.Packet{}, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = t.f.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return probe.Packet{}, fmt.Errorf("icmpping: trace: receive: %w", err)
		}
		if rerr != nil {
			return probe.Packet{}, fmt.Errorf("icmpping: trace: receive: %w", rerr)
		}
		return pkt, nil
	}
}

func (t *udpTracer) readOnce(fd int) (probe.Packet, bool, error) {
	for {
		n, oobn, _, from, err := unix.Recvmsg(fd, t.rbuf, t.oob, unix.MSG_ERRQUEUE)
		if err == nil {
			ie, perr := icmperr.ParseErrQueue(t.oob[:oobn])
			seq := t.seqOf(from)
			if perr != nil || seq == 0 || ie.Type == icmperr.NoICMP {
				continue
			}
			cm := sock.ParseControl(t.oob[:oobn])
			return probe.Packet{Seq: seq, Kind: probe.KindError, Time: cm.Time, Bytes: n,
				From: fromString(ie.From), Err: ie}, true, nil
		}
		if err == unix.EINTR {
			continue
		}
		// A UDP service that answers: the destination was reached.
		n, oobn, _, from, err = unix.Recvmsg(fd, t.rbuf, t.oob, 0)
		switch {
		case err == unix.EAGAIN:
			return probe.Packet{}, false, nil
		case err == unix.EINTR || sock.PendingErrno(err):
			continue
		case err != nil:
			return probe.Packet{}, false, err
		}
		if seq := t.seqOf(from); seq != 0 {
			cm := sock.ParseControl(t.oob[:oobn])
			return probe.Packet{Seq: seq, Kind: probe.KindReply, Time: cm.Time, Bytes: n,
				From: fromString(sockaddrAddr(from))}, true, nil
		}
	}
}

// traceOptions sets what -s, -i, -t and -F ask on a probe's socket.
func traceOptions(fd int, cfg *TraceConfig) error {
	c := Config{Target: cfg.Target, Source: cfg.Source, Socket: cfg.Socket}
	if cfg.DontFragment {
		c.PMTU = "do"
	}
	if err := bindSocket(fd, &c, 0); err != nil {
		return err
	}
	if err := cfg.Socket.Apply(fd, cfg.Target.Is6()); err != nil {
		return fmt.Errorf("icmpping: trace: %w", err)
	}
	return setOptions(fd, &c)
}

// socketTracer sends each probe from a socket of its own, as traceroute's udp (-U) and tcpconn
// (-T) methods do, since the probes all go to one port and what comes back can only be told
// apart by the socket it comes to: a UDP datagram, or a TCP connection attempt whose SYN
// carries the TTL. The ICMP errors are read from the socket's error queue; for TCP an answer
// of the destination (SYN-ACK or reset) ends the connect. No privileges needed.
type socketTracer struct {
	cfg     TraceConfig
	results chan probe.Packet
	done    chan struct{}
	wg      sync.WaitGroup
}

func newSocketTracer(cfg TraceConfig) (*socketTracer, error) {
	return &socketTracer{cfg: cfg, results: make(chan probe.Packet, 64), done: make(chan struct{})}, nil
}

func (t *socketTracer) Close() error {
	close(t.done)
	t.wg.Wait()
	return nil
}

func (t *socketTracer) Receive(ctx context.Context) (probe.Packet, error) {
	select {
	case p := <-t.results:
		return p, nil
	case <-ctx.Done():
		return probe.Packet{}, ctx.Err()
	}
}

func (t *socketTracer) send(ctx context.Context, seq, ttl int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	v6 := t.cfg.Target.Is6()
	family, level, opt := unix.AF_INET, unix.SOL_IP, unix.IP_RECVERR
	if v6 {
		family, level, opt = unix.AF_INET6, unix.SOL_IPV6, unix.IPV6_RECVERR
	}
	typ, proto := unix.SOCK_DGRAM, unix.IPPROTO_UDP
	if t.cfg.Proto == "tcp" {
		typ, proto = unix.SOCK_STREAM, unix.IPPROTO_TCP
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return time.Time{}, fmt.Errorf("icmpping: trace: socket: %w", err)
	}
	fail := func(err error) (time.Time, error) {
		unix.Close(fd)
		return time.Time{}, err
	}
	for _, o := range [][2]int{{level, opt}, {unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}} {
		if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
			return fail(fmt.Errorf("icmpping: trace: setsockopt: %w", err))
		}
	}
	if err := traceOptions(fd, &t.cfg); err != nil {
		return fail(err)
	}
	if err := setTTL(fd, v6, ttl); err != nil {
		return fail(err)
	}
	var sa unix.Sockaddr
	if v6 {
		sa = &unix.SockaddrInet6{Addr: t.cfg.Target.As16(), Port: t.cfg.Port}
	} else {
		sa = &unix.SockaddrInet4{Addr: t.cfg.Target.As4(), Port: t.cfg.Port}
	}
	now := time.Now()
	if t.cfg.Proto == "tcp" {
		err = unix.Connect(fd, sa)
		if err == unix.EINPROGRESS {
			err = nil
		}
	} else {
		err = unix.Sendto(fd, make([]byte, t.cfg.payload()), 0, sa)
	}
	if err != nil {
		if e := sendError(err, v6); e != nil {
			unix.Close(fd)
			return now, e
		}
		return fail(fmt.Errorf("icmpping: trace: send: %w", err))
	}
	t.wg.Add(1)
	go t.watch(fd, seq, now)
	return now, nil
}

// watch waits on one probe's socket, for up to the trace's wait, for what comes back.
func (t *socketTracer) watch(fd, seq int, sent time.Time) {
	defer t.wg.Done()
	defer unix.Close(fd)
	end := sent.Add(t.cfg.Wait)
	buf, oob := make([]byte, 512), make([]byte, 512)
	for {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		// Poll in short slices, so that Close is not held up by a long wait.
		ms := int(min(left, 50*time.Millisecond) / time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT | unix.POLLERR}}
		if t.cfg.Proto != "tcp" {
			fds[0].Events = unix.POLLIN | unix.POLLERR
		}
		n, err := unix.Poll(fds, max(ms, 1))
		select {
		case <-t.done:
			return
		default:
		}
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return
		}
		if p, ok := t.read(fd, seq, buf, oob, fds[0].Revents); ok {
			select {
			case t.results <- p:
			case <-t.done:
			}
			return
		}
	}
}

// read turns what the poll found into the probe's answer: an ICMP error from the error queue, a
// reply datagram, or the end of a TCP connect (connected or refused: the destination answered).
func (t *socketTracer) read(fd, seq int, buf, oob []byte, revents int16) (probe.Packet, bool) {
	if n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE); err == nil {
		ie, perr := icmperr.ParseErrQueue(oob[:oobn])
		if perr != nil || ie.Type == icmperr.NoICMP {
			return probe.Packet{}, false
		}
		cm := sock.ParseControl(oob[:oobn])
		return probe.Packet{Seq: seq, Kind: probe.KindError, Time: cm.Time, Bytes: n, From: fromString(ie.From), Err: ie}, true
	}
	target := fromString(t.cfg.Target)
	if t.cfg.Proto == "tcp" {
		if revents&unix.POLLOUT == 0 {
			return probe.Packet{}, false
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil || (soerr != 0 && soerr != int(unix.ECONNREFUSED)) {
			return probe.Packet{}, false
		}
		return probe.Packet{Seq: seq, Kind: probe.KindReply, Time: time.Now(), From: target}, true
	}
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
	if err != nil {
		return probe.Packet{}, false
	}
	cm := sock.ParseControl(oob[:oobn])
	return probe.Packet{Seq: seq, Kind: probe.KindReply, Time: cm.Time, Bytes: n, From: target}, true
}
