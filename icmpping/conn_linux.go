package icmpping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/sock"
)

// A Conn sends ICMP or ICMPv6 echo requests to one target and reads what comes back. It is a
// probe.Transport: Send and Receive may be called from two goroutines at once.
type Conn struct {
	f      *os.File
	rc     syscall.RawConn
	v6     bool
	raw    bool
	target netip.Addr
	sa     unix.Sockaddr
	rsa    unix.RawSockaddrAny // sa as the kernel takes it, for sendto
	rsaLen int
	id     uint16
	cookie [8]byte
	size   int
	// last is the highest seq sent, which maps 16-bit wire numbers back across wraparound.
	last atomic.Int64

	wbuf      []byte // Send's
	rbuf, oob []byte // Receive's

	// ReceiveBefore's: the run's ctx, and the stop of the AfterFunc that wakes a read when
	// that ctx ends.
	ctx     context.Context
	stopCtx func() bool
	// tryRead and pollRead are readOnce as the callbacks of rc.Control and rc.Read, made once
	// so that a read allocates no closure; they leave what they read in rpkt, rgot, rerr.
	tryRead  func(fd uintptr)
	pollRead func(fd uintptr) bool
	rpkt     probe.Packet
	rgot     bool
	rerr     error
	// The last sender and its printed form (fromString), used by the reading goroutine only.
	lastFrom    netip.Addr
	lastFromStr string

	ctxNames context.Context       // the context of name lookups: Dial's, without its cancel
	names    map[netip.Addr]string // looked-up names, when cfg.Names; reading goroutine only
	cfg      Config
	// source is the address the kernel sends from, and host the target as Dial was given it
	// before 0.0.0.0 became the address that answers it.
	source netip.Addr
}

// rawRcvBuf is the receive buffer a raw socket asks for.
const rawRcvBuf = 1 << 20

// Dial opens an ICMP socket for cfg.Target: a datagram ("ping") socket unless cfg.Privileged,
// else (or when that is not allowed) a raw one. When neither opens, the error wraps ErrNoSocket
// and says why and what to do.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	src, err := route(&cfg)
	if err != nil {
		return nil, err
	}
	v6 := cfg.Target.Is6()
	var c *Conn
	var dgramErr error
	if !cfg.Privileged {
		fd, err := socket(v6, false)
		if err == nil {
			c, err = newConn(fd, cfg, false)
			if err != nil {
				return nil, err
			}
		}
		dgramErr = err
	}
	if c == nil {
		fd, rawErr := socket(v6, true)
		if rawErr != nil {
			return nil, noSocketError(dgramErr, rawErr)
		}
		if c, err = newConn(fd, cfg, true); err != nil {
			return nil, err
		}
	}
	c.source = src
	c.ctxNames = context.WithoutCancel(ctx)
	if cfg.Names {
		c.names = map[netip.Addr]string{}
	}
	return c, nil
}

// route asks the kernel, as iputils does, for the path to cfg.Target with a UDP socket that it
// connects and that sends nothing, bound and allowed as the ICMP socket will be: it returns the
// source address, and fails before anything is sent when there is no route, the target is a
// broadcast address without cfg.Broadcast, or the interface does not exist. A target of 0.0.0.0
// (or ::) becomes the address that will answer it, as the kernel sends such probes to itself.
func route(cfg *Config) (netip.Addr, error) {
	v6 := cfg.Target.Is6()
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("icmpping: route: %w", err)
	}
	defer unix.Close(fd)
	if err := bindSocket(fd, cfg, 0); err != nil {
		return netip.Addr{}, err
	}
	if cfg.Broadcast {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	}
	if cfg.DontRoute {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DONTROUTE, 1)
	}
	var sa unix.Sockaddr
	if v6 {
		sa = &unix.SockaddrInet6{Addr: cfg.Target.As16(), Port: 1025}
	} else {
		sa = &unix.SockaddrInet4{Addr: cfg.Target.As4(), Port: 1025}
	}
	if err := unix.Connect(fd, sa); err != nil {
		if err == unix.EACCES && !cfg.Broadcast {
			return netip.Addr{}, fmt.Errorf("icmpping: %w", ErrBroadcast)
		}
		return netip.Addr{}, fmt.Errorf("icmpping: %w: %w", ErrConnect, err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("icmpping: route: %w", err)
	}
	src := sockaddrAddr(local)
	if cfg.Target.IsUnspecified() {
		cfg.Target = src
	}
	return src, nil
}

// bindSocket binds fd to cfg's interface (-I), and to its source address and port when either
// is set.
func bindSocket(fd int, cfg *Config, port int) error {
	if dev := cfg.Socket.Interface; dev != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev); err != nil {
			return fmt.Errorf("icmpping: %w: SO_BINDTODEVICE %s: %w", ErrInterface, dev, err)
		}
	}
	if !cfg.Source.IsValid() && port == 0 {
		return nil
	}
	var sa unix.Sockaddr
	if cfg.Target.Is6() {
		s6 := &unix.SockaddrInet6{Port: port}
		if cfg.Source.IsValid() {
			s6.Addr = cfg.Source.As16()
		}
		sa = s6
	} else {
		s4 := &unix.SockaddrInet4{Port: port}
		if cfg.Source.IsValid() {
			s4.Addr = cfg.Source.Unmap().As4()
		}
		sa = s4
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("icmpping: %w: bind %s port %d: %w", ErrInterface, cfg.Source, port, err)
	}
	return nil
}

// setOptions applies the options of cfg that are socket options of the ICMP socket.
func setOptions(fd int, cfg *Config) error {
	v6 := cfg.Target.Is6()
	type opt struct {
		level, opt, val int
		what            string
	}
	var opts []opt
	if cfg.Mark != 0 {
		opts = append(opts, opt{unix.SOL_SOCKET, unix.SO_MARK, cfg.Mark, "mark"})
	}
	if cfg.Broadcast {
		opts = append(opts, opt{unix.SOL_SOCKET, unix.SO_BROADCAST, 1, "broadcast"})
	}
	if cfg.DontRoute {
		opts = append(opts, opt{unix.SOL_SOCKET, unix.SO_DONTROUTE, 1, "dont route"})
	}
	if cfg.NoLoop {
		if v6 {
			opts = append(opts, opt{unix.SOL_IPV6, unix.IPV6_MULTICAST_LOOP, 0, "multicast loop"})
		} else {
			opts = append(opts, opt{unix.SOL_IP, unix.IP_MULTICAST_LOOP, 0, "multicast loop"})
		}
	}
	if cfg.PMTU != "" {
		v4 := map[string]int{"do": unix.IP_PMTUDISC_DO, "want": unix.IP_PMTUDISC_WANT, "probe": unix.IP_PMTUDISC_PROBE, "dont": unix.IP_PMTUDISC_DONT}
		if v6 {
			opts = append(opts, opt{unix.SOL_IPV6, unix.IPV6_MTU_DISCOVER, v4[cfg.PMTU], "path MTU discovery"})
		} else {
			opts = append(opts, opt{unix.SOL_IP, unix.IP_MTU_DISCOVER, v4[cfg.PMTU], "path MTU discovery"})
		}
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return fmt.Errorf("icmpping: set %s: %w", o.what, err)
		}
	}
	return nil
}

func socket(v6, raw bool) (int, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	typ := unix.SOCK_DGRAM
	if raw {
		typ = unix.SOCK_RAW
	}
	return unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
}

// noSocketError explains why no ICMP socket opened: each socket's errno and, where it is the
// cause, the sysctl or capability that refused it. The remedies are the caller's to give (they
// name the caller's own program and flags).
func noSocketError(dgramErr, rawErr error) error {
	var why []string
	if dgramErr != nil {
		w := "datagram socket: " + dgramErr.Error()
		if errors.Is(dgramErr, unix.EACCES) {
			r, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
			w += fmt.Sprintf(" (group %d is outside net.ipv4.ping_group_range %q)", os.Getegid(), strings.Join(strings.Fields(string(r)), " "))
		}
		why = append(why, w)
	}
	w := "raw socket: " + rawErr.Error()
	if errors.Is(rawErr, unix.EPERM) || errors.Is(rawErr, unix.EACCES) {
		w += " (needs CAP_NET_RAW)"
	}
	why = append(why, w)
	return fmt.Errorf("icmpping: %w: %s", ErrNoSocket, strings.Join(why, "; "))
}

func newConn(fd int, cfg Config, raw bool) (*Conn, error) {
	c := &Conn{
		v6:     cfg.Target.Is6(),
		raw:    raw,
		target: cfg.Target,
		size:   cfg.size(),
		cfg:    cfg,
		wbuf:   make([]byte, 0, 8+cfg.size()),
		rbuf:   make([]byte, 65536+60),
		oob:    make([]byte, 512),
	}
	if c.v6 {
		c.sa = &unix.SockaddrInet6{Addr: cfg.Target.As16()}
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&c.rsa))
		sa.Family, sa.Addr, c.rsaLen = unix.AF_INET6, cfg.Target.As16(), unix.SizeofSockaddrInet6
	} else {
		c.sa = &unix.SockaddrInet4{Addr: cfg.Target.As4()}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&c.rsa))
		sa.Family, sa.Addr, c.rsaLen = unix.AF_INET, cfg.Target.As4(), unix.SizeofSockaddrInet4
	}
	if _, err := rand.Read(c.cookie[:]); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("icmpping: cookie: %w", err)
	}
	var id [2]byte
	_, _ = rand.Read(id[:])
	c.id = binary.BigEndian.Uint16(id[:])
	if cfg.ID != 0 {
		c.id = uint16(cfg.ID)
	}
	port := 0
	if !raw {
		// A datagram socket's identifier is its port.
		port = cfg.ID
	}
	if err := bindSocket(fd, &cfg, port); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := setOptions(fd, &cfg); err != nil {
		unix.Close(fd)
		return nil, err
	}

	opts := []struct{ level, opt int }{{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}}
	switch {
	case c.v6:
		opts = append(opts, struct{ level, opt int }{unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT})
		if !raw {
			opts = append(opts, struct{ level, opt int }{unix.SOL_IPV6, unix.IPV6_RECVERR})
		}
	case !raw:
		// A raw IPv4 socket reads the TTL from the IP header; a datagram one needs a cmsg.
		opts = append(opts, struct{ level, opt int }{unix.SOL_IP, unix.IP_RECVTTL},
			struct{ level, opt int }{unix.SOL_IP, unix.IP_RECVERR})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("icmpping: setsockopt %d/%d: %w", o.level, o.opt, err)
		}
	}
	if raw {
		// A raw socket gets a copy of every ICMP message the host receives, other processes'
		// echo traffic included: give it room so that a busy host does not crowd ours out.
		// The forced size needs CAP_NET_ADMIN; without it the kernel's limit applies.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rawRcvBuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rawRcvBuf)
		}
		// As iputils does, let the kernel drop what is surely not ours before it is queued:
		// echo requests (our own among them, on loopback) and other processes' echo replies.
		// Best effort: without the filter, rawPacket tells them apart all the same.
		_ = attachFilter(fd, c.v6, c.id)
	}
	if cfg.TTL > 0 {
		if err := setTTL(fd, c.v6, cfg.TTL); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	if err := cfg.Socket.Apply(fd, c.v6); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("icmpping: %w", err)
	}
	c.f = os.NewFile(uintptr(fd), "icmp")
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		return nil, fmt.Errorf("icmpping: %w", err)
	}
	c.rc = rc
	c.tryRead = func(fd uintptr) { c.rpkt, c.rgot, c.rerr = c.readOnce(int(fd)) }
	c.pollRead = func(fd uintptr) bool {
		c.rpkt, c.rgot, c.rerr = c.readOnce(int(fd))
		return c.rgot || c.rerr != nil
	}
	return c, nil
}

func setTTL(fd int, v6 bool, ttl int) error {
	if ttl < 1 || ttl > 255 {
		return fmt.Errorf("icmpping: %w: %d", errTTL, ttl)
	}
	level, opt := unix.SOL_IP, unix.IP_TTL
	if v6 {
		level, opt = unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS
	}
	if err := unix.SetsockoptInt(fd, level, opt, ttl); err != nil {
		return fmt.Errorf("icmpping: set ttl %d: %w", ttl, err)
	}
	return nil
}

// Raw reports whether c uses a raw socket (privileged) rather than a datagram one.
func (c *Conn) Raw() bool { return c.raw }

// SetTTL sets the TTL (IPv4) or hop limit (IPv6) of the requests sent from now on.
func (c *Conn) SetTTL(ttl int) error {
	var err error
	cerr := c.rc.Control(func(fd uintptr) { err = setTTL(int(fd), c.v6, ttl) })
	if cerr != nil {
		return fmt.Errorf("icmpping: %w", cerr)
	}
	return err
}

// Close closes the socket; a blocked Receive returns.
func (c *Conn) Close() error { return c.f.Close() }

// Send sends echo request seq. An error the network stack raised for this probe alone (no route,
// a local firewall, no buffer space) comes back as an *icmperr.Error.
func (c *Conn) Send(ctx context.Context, seq int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	if int64(seq) > c.last.Load() {
		c.last.Store(int64(seq))
	}
	var now time.Time
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		// An ICMP error for an earlier probe leaves the socket's pending error set, and the
		// next send returns it instead of sending: clear it and try again, as the detail comes
		// from the error queue or as a message. A failure that stays is this probe's own.
		for range 3 {
			now = time.Now()
			c.wbuf = c.marshal(c.wbuf, wireSeq(seq), now.UnixNano())
			if serr = c.sendto(int(fd)); !sock.PendingErrno(serr) {
				break
			}
		}
		return serr != unix.EAGAIN
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("icmpping: send: %w", err)
	}
	if serr != nil {
		if e := sendError(serr, c.v6); e != nil {
			return now, e
		}
		return time.Time{}, fmt.Errorf("icmpping: send: %w", serr)
	}
	return now, nil
}

// sendError turns a send failure that concerns one probe into its *icmperr.Error, as iputils
// reports it and goes on; nil means the failure ends the run.
func sendError(err error, v6 bool) *icmperr.Error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return nil
	}
	switch errno {
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ECONNREFUSED:
		return icmperr.FromErrno(errno, v6, netip.Addr{})
	case unix.EPERM, unix.EACCES, unix.ENOBUFS, unix.EMSGSIZE, unix.EHOSTDOWN:
		return &icmperr.Error{V6: v6, Type: icmperr.NoICMP, Errno: errno, Reason: "Local error: " + sock.Capitalize(errno.Error())}
	}
	return nil
}

// Receive returns the next reply to, or ICMP error about, one of this Conn's probes. Other
// processes' echo traffic is skipped.
func (c *Conn) Receive(ctx context.Context) (probe.Packet, error) {
	if err := ctx.Err(); err != nil {
		return probe.Packet{}, err
	}
	_ = c.f.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = c.f.SetReadDeadline(sock.ALongTimeAgo) })
	defer stop()
	for {
		var pkt probe.Packet
		var got bool
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			pkt, got, rerr = c.readOnce(int(fd))
			return got || rerr != nil
		})
		if ctx.Err() != nil {
			return probe.Packet{}, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A deadline left by an earlier call's context; this one is still live.
			_ = c.f.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return probe.Packet{}, fmt.Errorf("icmpping: receive: %w", err)
		}
		if rerr != nil {
			return probe.Packet{}, fmt.Errorf("icmpping: receive: %w", rerr)
		}
		return pkt, nil
	}
}

// ReceiveBefore is Receive until deadline (the zero Time: none), read from the probe engine's
// own goroutine when one probe is in flight at a time (probe.DeadlineReceiver): a reply that is
// already queued, as on loopback it always is by the time Send returns, is read at once with no
// goroutine to wake. The engine calls it with one ctx per run; the wake-up on ctx's end is set
// up once for that ctx rather than on every call.
func (c *Conn) ReceiveBefore(ctx context.Context, deadline time.Time) (probe.Packet, bool, error) {
	if c.ctx != ctx {
		if c.stopCtx != nil {
			c.stopCtx()
		}
		c.ctx = ctx
		c.stopCtx = context.AfterFunc(ctx, func() { _ = c.f.SetReadDeadline(sock.ALongTimeAgo) })
	}
	if err := ctx.Err(); err != nil {
		return probe.Packet{}, false, err
	}
	// The reply is most likely queued already: read it without touching the deadline (a
	// runtime timer) or the poller.
	c.rgot, c.rerr = false, nil
	if err := c.rc.Control(c.tryRead); err != nil {
		return probe.Packet{}, false, fmt.Errorf("icmpping: receive: %w", err)
	}
	if c.rerr != nil {
		return probe.Packet{}, false, fmt.Errorf("icmpping: receive: %w", c.rerr)
	}
	if c.rgot {
		return c.rpkt, true, nil
	}
	_ = c.f.SetReadDeadline(deadline)
	// Checked after the deadline is set, so that ctx ending in between is not missed: the
	// AfterFunc's deadline may have been overwritten by ours.
	if err := ctx.Err(); err != nil {
		return probe.Packet{}, false, err
	}
	err := c.rc.Read(c.pollRead)
	pkt, rerr := c.rpkt, c.rerr // rc.Read returned without error only once pollRead got one
	switch {
	case ctx.Err() != nil:
		return probe.Packet{}, false, ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return probe.Packet{}, false, nil
	case err != nil:
		return probe.Packet{}, false, fmt.Errorf("icmpping: receive: %w", err)
	case rerr != nil:
		return probe.Packet{}, false, fmt.Errorf("icmpping: receive: %w", rerr)
	}
	return pkt, true, nil
}

// readOnce reads until it finds a packet of ours (got) or both queues are empty (neither got nor
// err), so that the edge-triggered poller is re-armed only when nothing is left.
func (c *Conn) readOnce(fd int) (pkt probe.Packet, got bool, err error) {
	for {
		if !c.raw {
			n, oobn, _, _, rerr := sock.Recvmsg(fd, c.rbuf, c.oob, unix.MSG_ERRQUEUE)
			if rerr == nil {
				if pkt, ok := c.errQueued(c.rbuf[:n], c.oob[:oobn]); ok {
					return pkt, true, nil
				}
				continue
			}
			if rerr == unix.EINTR {
				continue
			}
		}
		n, oobn, _, from, rerr := sock.Recvmsg(fd, c.rbuf, c.oob, 0)
		switch {
		case rerr == unix.EAGAIN:
			return probe.Packet{}, false, nil
		case rerr == unix.EINTR || sock.PendingErrno(rerr):
			continue
		case rerr != nil:
			return probe.Packet{}, false, rerr
		}
		var ok bool
		if c.raw {
			pkt, ok = c.rawPacket(c.rbuf[:n], c.oob[:oobn], from)
		} else {
			pkt, ok = c.dgramPacket(c.rbuf[:n], c.oob[:oobn], from)
		}
		if ok {
			return pkt, true, nil
		}
	}
}

// cmsgs is sock.ParseControl without the kernel's timestamp when the config says to time by
// the process's clock (ping -U).
func (c *Conn) cmsgs(oob []byte) sock.Control {
	cm := sock.ParseControl(oob)
	if c.cfg.UserTime {
		cm.Time = time.Time{}
	}
	return cm
}

// attachFilter installs a classic BPF program on a raw ICMP socket that drops echo requests
// and echo replies whose identifier is not id, and passes everything else (the errors quoting
// our probes among it). An IPv4 raw socket reads the IP header first; an ICMPv6 one does not.
func attachFilter(fd int, v6 bool, id uint16) error {
	request, reply := uint32(ipv4.ICMPTypeEcho), uint32(ipv4.ICMPTypeEchoReply)
	var header []bpf.Instruction
	if v6 {
		request, reply = uint32(ipv6.ICMPTypeEchoRequest), uint32(ipv6.ICMPTypeEchoReply)
		header = []bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegX, Val: 0}}
	} else {
		header = []bpf.Instruction{bpf.LoadMemShift{Off: 0}} // X = the IPv4 header's length
	}
	prog := append(header,
		bpf.LoadIndirect{Off: 0, Size: 1}, // the ICMP type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: request, SkipTrue: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: reply, SkipFalse: 2},
		bpf.LoadIndirect{Off: 4, Size: 2}, // the echo identifier
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(id), SkipFalse: 1},
		bpf.RetConstant{Val: 1 << 18},
		bpf.RetConstant{Val: 0},
	)
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
}

// sendto sends c.wbuf to the target. It is unix.Sendto with the address encoded once, and with
// RawSyscall, as the socket is non-blocking (see recvmsg): on loopback the whole echo, the
// reply included, happens inside this call.
func (c *Conn) sendto(fd int) error {
	if len(c.wbuf) == 0 {
		return unix.EINVAL
	}
	r, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&c.wbuf[0])), uintptr(len(c.wbuf)),
		0, uintptr(unsafe.Pointer(&c.rsa)), uintptr(c.rsaLen))
	if errno != 0 {
		return errno
	}
	if int(r) != len(c.wbuf) {
		return unix.EMSGSIZE
	}
	return nil
}

// fromString is fromString(a), remembered for the last a: every reply of a run comes from the
// same address, and its printed form need not be allocated each time.
func (c *Conn) fromString(a netip.Addr) string {
	if a != c.lastFrom || c.lastFromStr == "" {
		s := fromString(a)
		if c.names != nil && a.IsValid() {
			s = nameAddr(c.name(a), a)
		}
		c.lastFrom, c.lastFromStr = a, s
	}
	return c.lastFromStr
}

// name returns a's name, looked up once per address.
func (c *Conn) name(a netip.Addr) string {
	n, ok := c.names[a]
	if !ok {
		n = LookupName(c.ctxNames, a.Unmap())
		c.names[a] = n
	}
	return n
}

// named gives an error's sender its name, when names are on.
func (c *Conn) named(e *icmperr.Error) {
	if c.names != nil && e.From.IsValid() {
		e.Name = c.name(e.From.Unmap())
		if e.Name == "" {
			e.Name = e.From.Unmap().String()
		}
	}
}

// HeaderLine is iputils ping's first line for this Conn: host is the target as given; with -I
// the source address and interface follow ("from 10.0.0.1 eth0: ").
func (c *Conn) HeaderLine(host string) string {
	target := c.target.String()
	if c.v6 && c.names != nil {
		target = nameAddr(c.name(c.target), c.target)
	}
	from := ""
	if c.cfg.Socket.Interface != "" || c.cfg.Source.IsValid() {
		from = c.source.String()
	}
	return headerLine(host, target, c.v6, from, c.cfg.Socket.Interface, c.size)
}

// Untimed reports whether the payload is too short for the send time (under MinSize bytes):
// replies are matched by identifier and sequence only, and ping prints no times.
func (c *Conn) Untimed() bool { return c.size < MinSize }

func sockaddrAddr(sa unix.Sockaddr) netip.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// ours checks the cookie and maps the wire sequence number back; 0 means not ours.
func (c *Conn) ours(e echo, needCookie bool) int {
	if e.HasCookie && e.Cookie != c.cookie {
		return 0
	}
	if needCookie && !e.HasCookie && c.size >= MinSize {
		return 0
	}
	return engineSeq(e.Seq, int(c.last.Load()))
}

// dgramPacket handles a datagram socket's read: an ICMP echo reply without IP header. The kernel
// delivers only replies carrying the socket's identifier, which it chose, so the cookie is what
// tells this run's replies from another socket's that happened to get the same one.
func (c *Conn) dgramPacket(b, oob []byte, from netip.Addr) (probe.Packet, bool) {
	_, reply := echoTypes(c.v6)
	e, err := parseEcho(b, reply)
	if err != nil {
		return probe.Packet{}, false
	}
	seq := c.ours(e, true)
	if seq == 0 {
		return probe.Packet{}, false
	}
	cm := c.cmsgs(oob)
	return probe.Packet{Seq: seq, Kind: probe.KindReply, Time: cm.Time, Bytes: e.Len,
		From: c.fromString(from), TTL: cm.TTL}, true
}

// errQueued handles a read from a datagram socket's error queue: the data is the echo request the
// error quotes, the control messages carry the error and who sent it.
func (c *Conn) errQueued(b, oob []byte) (probe.Packet, bool) {
	ie, err := icmperr.ParseErrQueue(oob)
	if err != nil {
		return probe.Packet{}, false
	}
	request, _ := echoTypes(c.v6)
	e, err := parseEcho(b, request)
	if err != nil {
		// A local error (message too long) quotes nothing: Send reported it already.
		return probe.Packet{}, false
	}
	seq := c.ours(e, false)
	if seq == 0 {
		return probe.Packet{}, false
	}
	cm := c.cmsgs(oob)
	c.named(ie)
	return probe.Packet{Seq: seq, Kind: probe.KindError, Time: cm.Time, Bytes: len(b),
		From: fromString(ie.From), Err: ie}, true
}

// rawPacket handles a raw socket's read: every ICMP message the host receives (with the IPv4
// header for IPv4). Replies must carry our identifier and cookie; errors must quote a request with
// our identifier, to our target, and our cookie when the quote is long enough to hold it.
func (c *Conn) rawPacket(b, oob []byte, from netip.Addr) (probe.Packet, bool) {
	cm := c.cmsgs(oob)
	src := from
	msg := b
	if !c.v6 {
		ip, rest, err := splitIPv4(b)
		if err != nil || ip.Protocol != protoICMP {
			return probe.Packet{}, false
		}
		msg = rest
		cm.TTL = ip.TTL
		src, _ = netip.AddrFromSlice(ip.Src.To4())
	}
	if len(msg) < 8 {
		return probe.Packet{}, false
	}
	_, reply := echoTypes(c.v6)
	if e, err := parseEcho(msg, reply); err == nil {
		if e.ID != c.id {
			return probe.Packet{}, false
		}
		seq := c.ours(e, true)
		if seq == 0 {
			return probe.Packet{}, false
		}
		return probe.Packet{Seq: seq, Kind: probe.KindReply, Time: cm.Time, Bytes: e.Len,
			From: c.fromString(src), TTL: cm.TTL}, true
	}
	q, err := parseQuotedError(msg, c.v6)
	if err != nil || q.Echo.ID != c.id || q.Dst.Unmap() != c.target {
		return probe.Packet{}, false
	}
	seq := c.ours(q.Echo, false)
	if seq == 0 {
		return probe.Packet{}, false
	}
	ie := q.Err
	ie.From = src
	c.named(&ie)
	return probe.Packet{Seq: seq, Kind: probe.KindError, Time: cm.Time, Bytes: len(msg),
		From: fromString(src), TTL: cm.TTL, Err: &ie}, true
}
