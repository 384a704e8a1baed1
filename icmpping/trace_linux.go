package icmpping

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	t := &udpTracer{f: os.NewFile(uintptr(fd), "udp-trace"), v6: v6, cfg: cfg,
		payload: make([]byte, traceData), rbuf: make([]byte, 2048), oob: make([]byte, 512)}
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
