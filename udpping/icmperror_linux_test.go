package udpping

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
)

// A testNS is a network namespace this test binary created; it is removed when the test ends.
type testNS struct {
	name string
	h    netns.NsHandle
}

func newTestNS(t *testing.T, role string) *testNS {
	t.Helper()
	name := fmt.Sprintf("udppingtest%d-%s", os.Getpid(), role)
	ns := &testNS{name: name, h: testutil.NewNetns(t, name)}
	// The kernel's own errors, which the comparisons send several of, must not be rate limited.
	ns.do(t, func() {
		for _, p := range []string{"net/ipv4/icmp_ratelimit", "net/ipv6/icmp/ratelimit"} {
			if err := os.WriteFile("/proc/sys/"+p, []byte("0"), 0o644); err != nil {
				t.Errorf("%s: sysctl %s: %v", name, p, err)
			}
		}
	})
	return ns
}

// do runs fn on a thread inside the namespace: the sockets fn opens live there.
func (ns *testNS) do(t *testing.T, fn func()) { t.Helper(); testutil.InNetns(t, ns.h, fn) }

func (ns *testNS) link(t *testing.T, fn func(*netlink.Handle) error) {
	t.Helper()
	testutil.WithNetlink(t, ns.h, fn)
}

// An icmpEnv is where a client and a server run: both on one namespace's loopback, or each in
// its own namespace, joined by a veth pair.
type icmpEnv struct {
	name           string
	client, server *testNS
	clientAddr     map[bool]netip.Addr // by v6
	serverAddr     map[bool]netip.Addr
}

// newICMPEnvs builds the two environments of the ICMP error tests.
func newICMPEnvs(t *testing.T) []*icmpEnv {
	t.Helper()
	a, b := newTestNS(t, "a"), newTestNS(t, "b")
	a.link(t, func(nh *netlink.Handle) error {
		return nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "c0"}, PeerName: "s0", PeerNamespace: netlink.NsFd(int(b.h))})
	})
	setup := func(ns *testNS, dev string, addrs ...string) {
		ns.link(t, func(nh *netlink.Handle) error {
			link, err := nh.LinkByName(dev)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				ipn, err := netlink.ParseIPNet(a)
				if err != nil {
					return err
				}
				// No duplicate address detection: the address works at once.
				if err := nh.AddrAdd(link, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
					return fmt.Errorf("add %s: %w", a, err)
				}
			}
			return nh.LinkSetUp(link)
		})
	}
	setup(a, "c0", "10.66.0.1/24", "fd66::1/64")
	setup(b, "s0", "10.66.0.2/24", "fd66::2/64")
	addrs := func(v4, v6 string) map[bool]netip.Addr {
		return map[bool]netip.Addr{false: netip.MustParseAddr(v4), true: netip.MustParseAddr(v6)}
	}
	lo := addrs("127.0.0.1", "::1")
	return []*icmpEnv{
		{name: "loopback", client: b, server: b, clientAddr: lo, serverAddr: lo},
		{name: "pair", client: a, server: b, clientAddr: addrs("10.66.0.1", "fd66::1"), serverAddr: addrs("10.66.0.2", "fd66::2")},
	}
}

// listen starts a server in the environment's server namespace, on the family's address (or on
// every address, dual-stack, when wildcard), until the test ends.
func (e *icmpEnv) listen(t *testing.T, cfg ServerConfig, v6, wildcard bool) (*Server, netip.AddrPort) {
	t.Helper()
	cfg.Addr = netip.AddrPortFrom(e.serverAddr[v6], 0).String()
	if wildcard {
		cfg.Addr = ":0"
	}
	var s *Server
	var err error
	e.server.do(t, func() { s, err = Listen(context.Background(), cfg) })
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, netip.AddrPortFrom(e.serverAddr[v6], s.Addr().Port())
}

// ping runs pinglab's UDP client (the transport and the engine) in the client namespace and
// returns its events.
func (e *icmpEnv) ping(t *testing.T, to netip.AddrPort, opts probe.Options) []probe.Event {
	t.Helper()
	var c *Conn
	var err error
	e.client.do(t, func() { c, err = Dial(context.Background(), Config{Addr: to.String()}) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var evs []probe.Event
	if _, err := probe.Run(ctx, c, opts, func(ev probe.Event) { evs = append(evs, ev) }); err != nil {
		t.Fatalf("probe.Run: %v", err)
	}
	return evs
}

var icmpFamilies = []struct {
	name string
	v6   bool
}{{"IPv4", false}, {"IPv6", true}}

// TestICMPErrorEveryProbe answers every probe with each error type, over IPv4 and IPv6, on
// loopback and between two namespaces, with the server on its address and on the wildcard
// address (where it must find the address each datagram came to): every probe is reported with
// the error's words, from the server's address, and none is echoed.
func TestICMPErrorEveryProbe(t *testing.T) {
	envs := newICMPEnvs(t)
	for _, e := range envs {
		for _, f := range icmpFamilies {
			for _, wildcard := range []bool{false, true} {
				for _, typ := range ICMPErrorTypes() {
					name := fmt.Sprintf("%s/%s/wildcard=%v/%s", e.name, f.name, wildcard, typ)
					t.Run(name, func(t *testing.T) {
						et, _ := ParseICMPErrorType(typ)
						s, to := e.listen(t, ServerConfig{ICMPError: 1, ICMPErrorType: et}, f.v6, wildcard)
						const n = 5
						evs := e.ping(t, to, probe.Options{Count: n, Interval: 2 * time.Millisecond, Timeout: 5 * time.Second})
						want := et.Error(f.v6).Words()
						errs := 0
						for _, ev := range evs {
							switch {
							case ev.Type == probe.EventSent:
							case ev.Type == probe.EventError && ev.Err != nil && ev.Err.Words() == want && ev.From == e.serverAddr[f.v6].String():
								errs++
							case ev.Type == probe.EventError:
								t.Errorf("probe %d: error %v from %s, want %q from %s", ev.Seq, ev.Err, ev.From, want, e.serverAddr[f.v6])
							default:
								t.Errorf("probe %d: event %v, want an error", ev.Seq, ev.Type)
							}
						}
						if errs != n {
							t.Errorf("%d probes reported %q, want %d", errs, want, n)
						}
						if st := s.Stats(); len(st) != 1 || st[0].Received != n || st[0].Errors != n || st[0].Echoed != 0 {
							t.Errorf("server counted %+v, want %d received, all answered with errors", st, n)
						}
					})
				}
			}
		}
	}
}

// TestICMPErrorSeeded answers a seeded 30% of 500 probes with an error: the client counts 25-35%
// errors and the rest as replies, and the server agrees.
func TestICMPErrorSeeded(t *testing.T) {
	envs := newICMPEnvs(t)
	for _, e := range envs {
		for _, f := range icmpFamilies {
			t.Run(e.name+"/"+f.name, func(t *testing.T) {
				s, to := e.listen(t, ServerConfig{ICMPError: 0.3, Seed: 30}, f.v6, false)
				const n = 500
				evs := e.ping(t, to, probe.Options{Count: n, Interval: time.Millisecond, Timeout: 5 * time.Second})
				count := map[probe.EventType]int{}
				for _, ev := range evs {
					count[ev.Type]++
				}
				errs, replies := count[probe.EventError], count[probe.EventReply]
				if errs < n*25/100 || errs > n*35/100 || errs+replies != n {
					t.Errorf("%d errors and %d replies of %d probes (events %v); want 25-35%% errors, the rest replies", errs, replies, n, count)
				}
				st := s.Stats()
				if len(st) != 1 || st[0].Errors != errs || st[0].Echoed != replies || st[0].Received != n {
					t.Errorf("server counted %+v; the client saw %d errors and %d replies", st, errs, replies)
				}
			})
		}
	}
}

// TestICMPErrorDropAndError combines both draws with a seed: every probe is dropped, answered
// with an error or echoed, and a second server with the same seed decides the same way.
func TestICMPErrorDropAndError(t *testing.T) {
	e := newICMPEnvs(t)[0]
	var runs [2][]ClientStats
	for i := range runs {
		s, to := e.listen(t, ServerConfig{Drop: 0.2, ICMPError: 0.5, Seed: 7}, false, false)
		const n = 200
		evs := e.ping(t, to, probe.Options{Count: n, Interval: time.Millisecond, Timeout: time.Second})
		count := map[probe.EventType]int{}
		for _, ev := range evs {
			count[ev.Type]++
		}
		st := s.Stats()
		if len(st) != 1 || st[0].Dropped != count[probe.EventTimeout] || st[0].Errors != count[probe.EventError] || st[0].Echoed != count[probe.EventReply] {
			t.Fatalf("server counted %+v; the client saw %v", st, count)
		}
		// 20% dropped, then half of the other 80% answered with errors: about 40% each.
		if d, er := st[0].Dropped, st[0].Errors; d < n*10/100 || d > n*30/100 || er < n*30/100 || er > n*50/100 {
			t.Errorf("%d dropped and %d errors of %d; want about 20%% and 40%%", d, er, n)
		}
		st[0].Addr = netip.AddrPort{}
		runs[i] = st
	}
	if runs[0][0] != runs[1][0] {
		t.Errorf("two runs with one seed differ: %+v and %+v", runs[0], runs[1])
	}
}

// sockErr is what a plain socket's error queue says about an ICMP error.
type sockErr struct {
	Errno      unix.Errno
	Origin     uint8
	Type, Code uint8
	Offender   netip.Addr
}

// plainErr sends one datagram from a plain UDP socket with IP_RECVERR (IPV6_RECVERR), made here
// without pinglab's client, and reads what the kernel puts on its error queue.
func plainErr(t *testing.T, ns *testNS, to netip.AddrPort) sockErr {
	t.Helper()
	var got sockErr
	ns.do(t, func() {
		af, level, opt := unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_RECVERR
		var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: to.Addr().As16(), Port: int(to.Port())}
		if to.Addr().Is4() {
			af, level, opt = unix.AF_INET, unix.IPPROTO_IP, unix.IP_RECVERR
			sa = &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}
		}
		fd, err := unix.Socket(af, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
			t.Fatal(err)
		}
		if err := unix.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, pingmsg.Append(nil, 1, time.Now(), 0)); err != nil {
			t.Fatal(err)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}} // POLLERR is always reported
		if n, err := unix.Poll(pfd, 10_000); err != nil || n != 1 || pfd[0].Revents&unix.POLLERR == 0 {
			t.Fatalf("poll: %d, %v, revents %#x: no error came", n, err, pfd[0].Revents)
		}
		buf, oob := make([]byte, 2048), make([]byte, 512)
		_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE)
		if err != nil {
			t.Fatalf("recvmsg MSG_ERRQUEUE: %v", err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
				(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
				// struct sock_extended_err, then the offender's sockaddr.
				d := m.Data
				got = sockErr{Errno: unix.Errno(binary.NativeEndian.Uint32(d)), Origin: d[4], Type: d[5], Code: d[6]}
				switch off := d[16:]; binary.NativeEndian.Uint16(off) {
				case unix.AF_INET:
					got.Offender = netip.AddrFrom4([4]byte(off[4:8]))
				case unix.AF_INET6:
					got.Offender = netip.AddrFrom16([16]byte(off[8:24]))
				}
			}
		}
	})
	return got
}

// TestICMPErrorErrno checks, with a plain socket client, that the kernel takes each of the
// server's errors for what it is: the errno net/ipv4/icmp.c (icmp_err_convert) and
// net/ipv6/icmp.c (icmpv6_err_convert) give for its type and code, and the same errno, type
// and code as the kernel's own error of that kind (an nftables reject rule) where one exists.
func TestICMPErrorErrno(t *testing.T) {
	_, nftErr := exec.LookPath("nft")
	envs := newICMPEnvs(t)
	tests := []struct {
		t         ICMPErrorType
		v6        bool
		errno     unix.Errno
		typ, code uint8
		nftReject string // the rule that makes the kernel send the same error; "" for none
	}{
		{HostUnreachable, false, unix.EHOSTUNREACH, 3, 1, "icmp type host-unreachable"},
		{NetUnreachable, false, unix.ENETUNREACH, 3, 0, "icmp type net-unreachable"},
		{PortUnreachable, false, unix.ECONNREFUSED, 3, 3, "icmp type port-unreachable"},
		{ProtoUnreachable, false, unix.ENOPROTOOPT, 3, 2, "icmp type prot-unreachable"},
		{AdminProhibited, false, unix.EHOSTUNREACH, 3, 13, "icmp type admin-prohibited"},
		{HostUnreachable, true, unix.EHOSTUNREACH, 1, 3, "icmpv6 type addr-unreachable"},
		{NetUnreachable, true, unix.ENETUNREACH, 1, 0, "icmpv6 type no-route"},
		{PortUnreachable, true, unix.ECONNREFUSED, 1, 4, "icmpv6 type port-unreachable"},
		// ICMPv6 has no protocol unreachable; a parameter problem is EPROTO for every code.
		{ProtoUnreachable, true, unix.EPROTO, 4, 1, ""},
		{AdminProhibited, true, unix.EACCES, 1, 1, "icmpv6 type admin-prohibited"},
	}
	for _, e := range envs {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%v/v6=%v", e.name, tt.t, tt.v6), func(t *testing.T) {
				origin := uint8(unix.SO_EE_ORIGIN_ICMP)
				if tt.v6 {
					origin = unix.SO_EE_ORIGIN_ICMP6
				}
				want := sockErr{Errno: tt.errno, Origin: origin, Type: tt.typ, Code: tt.code, Offender: e.serverAddr[tt.v6]}
				s, to := e.listen(t, ServerConfig{ICMPError: 1, ICMPErrorType: tt.t}, tt.v6, false)
				if got := plainErr(t, e.client, to); got != want {
					t.Errorf("the server's error: %+v, want %+v", got, want)
				}
				if st := s.Stats(); len(st) != 1 || st[0].Errors != 1 || st[0].Echoed != 0 {
					t.Errorf("server counted %+v", st)
				}
				if tt.nftReject == "" {
					return
				}
				if nftErr != nil {
					testutil.SkipOrFail(t, "nft not installed (Debian package nftables): cannot compare with the kernel's own error")
				}
				// The kernel's own error of the same kind, for the same datagram.
				rule := fmt.Sprintf("udp dport %d reject with %s", to.Port(), tt.nftReject)
				nft(t, e.server, "add table inet udppingtest\nadd chain inet udppingtest in { type filter hook input priority 0; }\nadd rule inet udppingtest in "+rule+"\n")
				defer nft(t, e.server, "delete table inet udppingtest\n")
				if got := plainErr(t, e.client, to); got != want {
					t.Errorf("the kernel's error (%s): %+v, want %+v as the server's", rule, got, want)
				}
			})
		}
	}
}

func nft(t *testing.T, ns *testNS, script string) {
	t.Helper()
	ns.do(t, func() {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
	})
}

// TestICMPErrorNeedsNetRaw checks that without CAP_NET_RAW Listen fails at once, saying so.
func TestICMPErrorNeedsNetRaw(t *testing.T) {
	ns := newTestNS(t, "noraw")
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", ":0"} {
		var s *Server
		var err error
		testutil.WithoutNetRaw(t, ns.h, func() { s, err = Listen(context.Background(), ServerConfig{Addr: addr, ICMPError: 0.1}) })
		if err == nil {
			s.Close()
			t.Fatalf("Listen on %s without CAP_NET_RAW succeeded", addr)
		}
		if !errors.Is(err, ErrNeedRaw) || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "CAP_NET_RAW") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Listen on %s: %q; want one line saying CAP_NET_RAW is needed", addr, err)
		}
		// Without ICMP errors no privilege is needed.
		testutil.WithoutNetRaw(t, ns.h, func() { s, err = Listen(context.Background(), ServerConfig{Addr: addr}) })
		if err != nil {
			t.Errorf("Listen on %s without ICMP errors: %v", addr, err)
		} else {
			s.Close()
		}
	}
}

// TestICMPErrorFromLocalAddress pings a wildcard server at 127.0.0.5: the error must come from
// 127.0.0.5, the address the datagram came to (the kernel would pick 127.0.0.1 to reach the
// client), and quote it as sent to 127.0.0.5, or the client's kernel would not match it.
func TestICMPErrorFromLocalAddress(t *testing.T) {
	e := newICMPEnvs(t)[0]
	_, to := e.listen(t, ServerConfig{ICMPError: 1}, false, true)
	to = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.5"), to.Port())
	for _, ev := range e.ping(t, to, probe.Options{Count: 3, Interval: 2 * time.Millisecond, Timeout: 5 * time.Second}) {
		if ev.Type != probe.EventSent && (ev.Type != probe.EventError || ev.From != "127.0.0.5") {
			t.Errorf("probe %d: %v from %q, want an error from 127.0.0.5", ev.Seq, ev.Type, ev.From)
		}
	}
}
