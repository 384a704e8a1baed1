package lossy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
	"github.com/pinglab/pinglab/udpping"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary, re-executed, apply a drop in a namespace and hold it until
// a signal, as `pinglab lossy drop --netns NS` does: the SIGTERM and SIGKILL tests run it.
const helperEnv = "PINGLAB_LOSSY_TEST_HOLD"

func TestMain(m *testing.M) {
	if ns := os.Getenv(helperEnv); ns != "" {
		os.Exit(holdHelper(ns))
	}
	os.Exit(m.Run())
}

func holdHelper(ns string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	apply := func(ctx context.Context, o Options) error {
		return ApplyDrop(ctx, o, Drop{Prob: 0.2, Proto: "udp", Port: 12000})
	}
	if n, ok := strings.CutPrefix(ns, netemHolder); ok {
		ns, apply = n, holdNetem
	}
	o := Options{Netns: ns}
	if err := apply(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("applied")
	if err := Hold(ctx, o, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

var labSeq atomic.Int32

// netipCmp compares netip values by ==, as go-cmp cannot look inside them.
var netipCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

// testLab builds a lab whose namespaces carry this test binary's pid, removed at the end.
func testLab(t *testing.T, hosts int) LabInfo {
	t.Helper()
	testutil.RequireRoot(t)
	prefix := fmt.Sprintf("plt%d-%d-", os.Getpid(), labSeq.Add(1))
	t.Cleanup(func() {
		if err := LabDown(context.Background(), WithPrefix(prefix)); err != nil {
			t.Errorf("LabDown: %v", err)
		}
	})
	l, err := LabUp(context.Background(), hosts, WithPrefix(prefix))
	if err != nil {
		t.Fatalf("LabUp(%d): %v", hosts, err)
	}
	return l
}

func host(t *testing.T, l LabInfo, name string) LabHost {
	t.Helper()
	h, ok := l.Host(name)
	if !ok {
		t.Fatalf("lab has no %s", name)
	}
	return h
}

// inHost runs f on a thread inside the host's namespace (sockets made there stay there).
func inHost(t *testing.T, h LabHost, f func() error) {
	t.Helper()
	if err := inNetns(filepath.Join("/run/netns", h.Netns), f); err != nil {
		t.Fatalf("in %s: %v", h.Netns, err)
	}
}

// runIn runs a command in a namespace and returns its combined output.
func runIn(t *testing.T, ns string, name string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testutil.SkipOrFail(t, "%s is not installed (Debian: apt-get install nftables iproute2 iputils-ping)", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := StartIn(ns, cmd); err != nil {
		t.Fatalf("start %s in %s: %v", name, ns, err)
	}
	err := cmd.Wait()
	return out.String(), err
}

// nftRuleset is the outside witness: what the nft binary lists in the namespace.
func nftRuleset(t *testing.T, ns string) string {
	t.Helper()
	out, err := runIn(t, ns, "nft", "list", "ruleset")
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return out
}

// udpServer starts pinglab's UDP echo server in the host, on both families.
func udpServer(t *testing.T, h LabHost, port int) {
	t.Helper()
	var s *udpping.Server
	ctx, cancel := context.WithCancel(context.Background())
	inHost(t, h, func() (err error) {
		s, err = udpping.Listen(ctx, udpping.ServerConfig{Addr: fmt.Sprintf("[::]:%d", port), Network: "udp"})
		return err
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); s.Close(); <-done })
}

// udpRun runs pinglab's UDP client from the host and counts what came back.
func udpRun(t *testing.T, h LabHost, dst netip.AddrPort, opts probe.Options) (map[probe.EventType]int, []*icmperr.Error) {
	t.Helper()
	got := map[probe.EventType]int{}
	var errs []*icmperr.Error
	for _, e := range udpEvents(t, h, dst, opts) {
		got[e.Type]++
		if e.Type == probe.EventError {
			errs = append(errs, e.Err)
		}
	}
	return got, errs
}

// udpEvents runs pinglab's UDP client from the host and returns its events in the order the
// engine emitted them.
func udpEvents(t *testing.T, h LabHost, dst netip.AddrPort, opts probe.Options) []probe.Event {
	t.Helper()
	var c *udpping.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inHost(t, h, func() (err error) {
		c, err = udpping.Dial(ctx, udpping.Config{Addr: dst.String()})
		return err
	})
	defer c.Close()
	var events []probe.Event
	if _, err := probe.Run(ctx, c, opts, func(e probe.Event) {
		e.Data = nil // the engine may reuse it
		events = append(events, e)
	}); err != nil {
		t.Fatalf("probe.Run: %v", err)
	}
	return events
}

func TestLabUpDownTwice(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("plt%d-twice-", os.Getpid())
	t.Cleanup(func() { _ = LabDown(ctx, WithPrefix(prefix)) })
	for _, hosts := range []int{2, 3, 2} {
		l, err := LabUp(ctx, hosts, WithPrefix(prefix))
		if err != nil {
			t.Fatalf("LabUp(%d): %v", hosts, err)
		}
		if _, err := LabUp(ctx, hosts, WithPrefix(prefix)); !errors.Is(err, ErrLabExists) {
			t.Fatalf("second LabUp(%d) = %v, want ErrLabExists", hosts, err)
		}
		st, err := LabStatus(ctx, WithPrefix(prefix))
		if err != nil {
			t.Fatalf("LabStatus: %v", err)
		}
		if len(st.Hosts) != hosts {
			t.Fatalf("LabStatus has %d hosts, want %d", len(st.Hosts), hosts)
		}
		for _, want := range l.Hosts {
			got, _ := st.Host(want.Name)
			if diff := cmp.Diff(want.Links, got.Links, netipCmp); diff != "" {
				t.Errorf("%s links (-want +got):\n%s", want.Name, diff)
			}
			if want.Gateway4 != got.Gateway4 || want.Gateway6 != got.Gateway6 || want.Forwarding != got.Forwarding {
				t.Errorf("%s: status says gateways %v %v forwarding %v, want %v %v %v", want.Name,
					got.Gateway4, got.Gateway6, got.Forwarding, want.Gateway4, want.Gateway6, want.Forwarding)
			}
		}
		if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err == nil {
			if !strings.Contains(string(out), prefix+"client") {
				t.Errorf("ip netns list does not show %sclient:\n%s", prefix, out)
			}
		}
		for i := 0; i < 2; i++ {
			if err := LabDown(ctx, WithPrefix(prefix)); err != nil {
				t.Fatalf("LabDown #%d: %v", i+1, err)
			}
		}
		for _, n := range []string{"client", "server", "router"} {
			if exists("/run/netns/" + prefix + n) {
				t.Errorf("%s%s survived LabDown", prefix, n)
			}
		}
		if _, err := LabStatus(ctx, WithPrefix(prefix)); !errors.Is(err, ErrNoLab) {
			t.Errorf("LabStatus after down = %v, want ErrNoLab", err)
		}
	}
}

func TestLabRouterTTL(t *testing.T) {
	l := testLab(t, 3)
	client, router, server := host(t, l, HostClient), host(t, l, HostRouter), host(t, l, HostServer)
	out, _ := runIn(t, client.Netns, "ping", "-n", "-c", "1", "-t", "1", "-W", "5", server.Addr(false).String())
	if want := "From " + router.Addr(false).String(); !strings.Contains(out, want) || !strings.Contains(out, "Time to live exceeded") {
		t.Errorf("ping -t 1 to the server: want %q and Time to live exceeded, got:\n%s", want, out)
	}
	for _, dst := range []netip.Addr{server.Addr(false), server.Addr(true)} {
		out, err := runIn(t, client.Netns, "ping", "-n", "-c", "1", "-W", "5", dst.String())
		if err != nil || !strings.Contains(out, "1 received") {
			t.Errorf("ping %s: %v\n%s", dst, err, out)
		}
	}
	// A reject at the server comes back through the router.
	if err := ApplyReject(context.Background(), Options{Netns: server.Netns}, Reject{With: HostUnreachable, Proto: "icmp"}); err != nil {
		t.Fatal(err)
	}
	out, _ = runIn(t, client.Netns, "ping", "-n", "-c", "1", "-W", "5", server.Addr(false).String())
	if !strings.Contains(out, "Destination Host Unreachable") {
		t.Errorf("ping through a host-unreachable reject: want Destination Host Unreachable, got:\n%s", out)
	}
}

func TestDropMeasured(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	udpServer(t, server, 12000)
	dst := netip.AddrPortFrom(server.Addr(false), 12000)
	o := Options{Netns: server.Netns}
	const n = 1000
	for _, tc := range []struct {
		prob     float64
		min, max int // replies
		witness  string
	}{
		{0, n, n, "numgen random mod 100 < 0 counter"},
		{0.2, n * 75 / 100, n * 85 / 100, "numgen random mod 100 < 20 counter"},
		{1, 0, 0, "numgen random mod 100 < 100 counter"},
	} {
		t.Run(Percent(tc.prob), func(t *testing.T) {
			d := Drop{Prob: tc.prob, Proto: "udp", Port: 12000}
			if err := ApplyDrop(context.Background(), o, d); err != nil {
				t.Fatal(err)
			}
			if rs := nftRuleset(t, server.Netns); !strings.Contains(rs, tc.witness) {
				t.Errorf("nft list ruleset lacks %q:\n%s", tc.witness, rs)
			}
			_, got := replies(measure(t, client, server, dst, n))
			if r := got[probe.EventReply]; r < tc.min || r > tc.max {
				t.Errorf("drop %s: %d of %d replies, want %d to %d (events %v)", Percent(tc.prob), r, n, tc.min, tc.max, got)
			} else {
				t.Logf("drop %s: %d of %d replies", Percent(tc.prob), r, n)
			}
		})
	}
	if err := Clear(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if _, got := replies(measure(t, client, server, dst, 50)); got[probe.EventReply] != 50 {
		t.Errorf("after Clear: %v, want 50 replies", got)
	}
}

func TestRejectCodes(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	udpServer(t, server, 12000)
	var ln net.Listener
	inHost(t, server, func() (err error) { ln, err = net.Listen("tcp", "[::]:12001"); return err })
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	o := Options{Netns: server.Netns}
	type want struct {
		typ, code int // -1: the probe is answered
		errno     syscall.Errno
	}
	for _, tc := range []struct {
		with    string
		witness string
		v4, v6  want
	}{
		{NetUnreachable, "reject with icmpx no-route", want{3, 0, unix.ENETUNREACH}, want{1, 0, unix.ENETUNREACH}},
		{HostUnreachable, "reject with icmpx host-unreachable", want{3, 1, unix.EHOSTUNREACH}, want{1, 3, unix.EHOSTUNREACH}},
		{ProtoUnreachable, "reject with icmp prot-unreachable", want{3, 2, unix.ENOPROTOOPT}, want{-1, 0, 0}},
		{PortUnreachable, `reject comment "pinglab reject with=port-unreachable"`, want{3, 3, unix.ECONNREFUSED}, want{1, 4, unix.ECONNREFUSED}},
		{AdminProhibited, "reject with icmpx admin-prohibited", want{3, 13, unix.EHOSTUNREACH}, want{1, 1, unix.EACCES}},
		{TCPReset, "reject with tcp reset", want{-1, 0, unix.ECONNREFUSED}, want{-1, 0, unix.ECONNREFUSED}},
	} {
		t.Run(tc.with, func(t *testing.T) {
			if err := ApplyReject(context.Background(), o, Reject{With: tc.with}); err != nil {
				t.Fatal(err)
			}
			if rs := nftRuleset(t, server.Netns); !strings.Contains(rs, tc.witness) {
				t.Errorf("nft list ruleset lacks %q:\n%s", tc.witness, rs)
			}
			for _, fam := range []struct {
				v6 bool
				w  want
			}{{false, tc.v4}, {true, tc.v6}} {
				dst := server.Addr(fam.v6)
				for seq := 1; seq <= 3; seq++ {
					e, reply := udpProbe(t, client, netip.AddrPortFrom(dst, 12000), seq)
					switch {
					case fam.w.typ < 0 && !reply:
						t.Errorf("UDP probe %d to %s: %v, want a reply", seq, dst, e)
					case fam.w.typ >= 0 && e == nil:
						t.Errorf("UDP probe %d to %s: reply %v, want ICMP type %d code %d", seq, dst, reply, fam.w.typ, fam.w.code)
					case fam.w.typ >= 0 && (e.Type != fam.w.typ || e.Code != fam.w.code || e.V6 != fam.v6 || e.From != dst):
						t.Errorf("UDP probe %d to %s: error %+v (%s), want type %d code %d from %s", seq, dst, *e, e.Words(), fam.w.typ, fam.w.code, dst)
					case seq == 1 && e != nil:
						t.Logf("UDP to %s: %s", dst, e.Words())
					}
				}
				var conn net.Conn
				var derr error
				inHost(t, client, func() error {
					d := net.Dialer{Timeout: 5 * time.Second}
					conn, derr = d.Dial("tcp", netip.AddrPortFrom(dst, 12001).String())
					return nil
				})
				if conn != nil {
					conn.Close()
				}
				switch {
				case fam.w.errno == 0 && derr != nil:
					t.Errorf("TCP to %s: %v, want a connection", dst, derr)
				case fam.w.errno != 0 && !errors.Is(derr, fam.w.errno):
					t.Errorf("TCP to %s: %v, want %v", dst, derr, fam.w.errno)
				case fam.w.errno != 0:
					t.Logf("TCP to %s: %s", dst, icmperr.FromErrno(derr, fam.v6, dst).Words())
				}
			}
		})
	}
}

func TestRejectSeenByUDPClient(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	udpServer(t, server, 12000)
	for _, tc := range []struct {
		with  string
		v6    bool
		words string
	}{
		{HostUnreachable, false, "Destination Host Unreachable"},
		{PortUnreachable, false, "Destination Port Unreachable"},
		{HostUnreachable, true, "Destination unreachable: Address unreachable"},
		{PortUnreachable, true, "Destination unreachable: Port unreachable"},
	} {
		if err := ApplyReject(context.Background(), Options{Netns: server.Netns}, Reject{With: tc.with, Proto: "udp", Port: 12000}); err != nil {
			t.Fatal(err)
		}
		got, errs := udpRun(t, client, netip.AddrPortFrom(server.Addr(tc.v6), 12000), probe.Options{Count: 10, Interval: 10 * time.Millisecond, Timeout: 3 * time.Second})
		if got[probe.EventError] != 10 || len(errs) != 10 || errs[0].Words() != tc.words {
			t.Errorf("%s v6=%v: events %v, errors %v; want 10 errors %q", tc.with, tc.v6, got, errs, tc.words)
		}
	}
}

// udpProbe sends one datagram from the host with IP_RECVERR / IPV6_RECVERR on and returns the
// ICMP error the kernel queued for it, or reply true when the echo came back: what every UDP
// client decodes.
func udpProbe(t *testing.T, h LabHost, dst netip.AddrPort, seq int) (*icmperr.Error, bool) {
	t.Helper()
	var conn *net.UDPConn
	inHost(t, h, func() (err error) {
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
		return err
	})
	defer conn.Close()
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	level, opt := unix.SOL_IP, unix.IP_RECVERR
	if dst.Addr().Is6() {
		level, opt = unix.SOL_IPV6, unix.IPV6_RECVERR
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, 1) }); err != nil || serr != nil {
		t.Fatalf("set RECVERR: %v %v", err, serr)
	}
	if _, err := conn.Write([]byte(fmt.Sprintf("ping %d reject test", seq))); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 1500), make([]byte, 512)
	// Bounded: 300 polls of 10ms, far above a veth's round trip.
	for i := 0; i < 300; i++ {
		var e *icmperr.Error
		var reply bool
		err := rc.Control(func(fd uintptr) {
			if _, oobn, _, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT); err == nil {
				e, _ = icmperr.ParseErrQueue(oob[:oobn])
				return
			}
			// A plain read returns the data, or the error's errno, which the queue also holds.
			if n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT); err == nil && n > 0 {
				reply = strings.HasPrefix(string(buf[:n]), fmt.Sprintf("PING %d ", seq))
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if e != nil || reply {
			return e, reply
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, false
}

// foreign puts a table and a root qdisc that are not pinglab's into the host.
func foreign(t *testing.T, h LabHost) *netlink.Handle {
	t.Helper()
	for _, args := range [][]string{
		{"add", "table", "inet", "foreign"},
		{"add", "chain", "inet", "foreign", "c", "{ type filter hook input priority 10; }"},
		{"add", "rule", "inet", "foreign", "c", "counter"},
	} {
		if out, err := runIn(t, h.Netns, "nft", args...); err != nil {
			t.Fatalf("nft %v: %v: %s", args, err, out)
		}
	}
	ns, err := netns.GetFromPath("/run/netns/" + h.Netns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nh.Close)
	link, err := nh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	tbf := &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(0x99, 0), Parent: netlink.HANDLE_ROOT},
		Rate: 125000000, Limit: 100000, Buffer: 100000}
	if err := nh.QdiscAdd(tbf); err != nil {
		t.Fatalf("add tbf: %v", err)
	}
	return nh
}

func checkForeign(t *testing.T, h LabHost, nh *netlink.Handle, after string) {
	t.Helper()
	if rs := nftRuleset(t, h.Netns); !strings.Contains(rs, "table inet foreign") || !strings.Contains(rs, "counter packets") {
		t.Errorf("after %s the foreign table is gone:\n%s", after, rs)
	}
	link, err := nh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	q, err := rootQdisc(nh, link)
	if err != nil {
		t.Fatal(err)
	}
	if q == nil || q.Type() != "tbf" || q.Attrs().Handle != netlink.MakeHandle(0x99, 0) {
		t.Errorf("after %s the root qdisc is %v, want the foreign tbf 99:", after, q)
	}
}

func TestForeignStateSurvives(t *testing.T) {
	l := testLab(t, 2)
	server := host(t, l, HostServer)
	nh := foreign(t, server)
	ctx := context.Background()
	o := Options{Netns: server.Netns}
	steps := []struct {
		name string
		do   func() error
	}{
		{"clear", func() error { return Clear(ctx, o) }},
		{"clear again", func() error { return Clear(ctx, o) }},
		{"drop", func() error { return ApplyDrop(ctx, o, Drop{Prob: 0.5}) }},
		{"show", func() error { _, err := Show(ctx, o); return err }},
		{"reject", func() error { return ApplyReject(ctx, o, Reject{With: PortUnreachable, Proto: "udp", Port: 9}) }},
		{"netem on the tbf", func() error {
			err := ApplyNetem(ctx, o, Netem{Dev: "eth0", Loss: 0.2})
			if !errors.Is(err, ErrForeignQdisc) || !strings.Contains(err.Error(), "tbf 99:0") {
				return fmt.Errorf("netem over a foreign tbf: %v, want ErrForeignQdisc naming tbf 99:0", err)
			}
			return nil
		}},
		{"clear at the end", func() error { return Clear(ctx, o) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		checkForeign(t, server, nh, s.name)
	}
	st, err := Show(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Empty() {
		t.Errorf("Show after clear: %+v, want empty", st)
	}
	if rs := nftRuleset(t, server.Netns); strings.Contains(rs, "pinglab") {
		t.Errorf("pinglab's table survived Clear:\n%s", rs)
	}
}

func TestShowReadsBack(t *testing.T) {
	l := testLab(t, 2)
	ctx := context.Background()
	o := Options{Netns: host(t, l, HostServer).Netns}
	from, _ := ParsePrefix("10.77.1.0/24")
	d := Drop{Prob: 0.125, Proto: "udp", Port: 12000, From: from, Dir: "in"}
	if err := ApplyDrop(ctx, o, d); err != nil {
		t.Fatal(err)
	}
	st, err := Show(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(State{Netns: o.Netns, Drop: &d, Table: true}, st, netipCmp); diff != "" {
		t.Errorf("Show (-want +got):\n%s", diff)
	}
	rs := nftRuleset(t, o.Netns)
	if !strings.Contains(rs, "ip saddr 10.77.1.0/24") || !strings.Contains(rs, "numgen random mod 10000 < 1250") {
		t.Errorf("nft list ruleset does not show the rule:\n%s", rs)
	}
	r := Reject{With: TCPReset, Port: 12001}
	if err := ApplyReject(ctx, o, r); err != nil {
		t.Fatal(err)
	}
	if st, err = Show(ctx, o); err != nil {
		t.Fatal(err)
	}
	if st.Drop != nil || st.Reject == nil || *st.Reject != r {
		t.Errorf("Show after reject: %+v, want only the reject %+v", st, r)
	}
}

// TestCommandsReproduce checks that the nft commands `lossy show` prints build, through the nft
// binary, the very ruleset pinglab builds through netlink.
func TestCommandsReproduce(t *testing.T) {
	l := testLab(t, 2)
	ctx := context.Background()
	ours, theirs := host(t, l, HostServer).Netns, host(t, l, HostClient).Netns
	strip := regexp.MustCompile(`counter packets \d+ bytes \d+`)
	for _, s := range []State{
		{Drop: &Drop{Prob: 0.2, Proto: "udp", Port: 12000}},
		{Drop: &Drop{Prob: 0.125, Dir: "out", From: mustPrefix(t, "fd00:77:1::/64"), Proto: "icmp"}},
		{Reject: &Reject{With: ProtoUnreachable, From: mustPrefix(t, "10.77.1.0/24")}},
		{Reject: &Reject{With: PortUnreachable, Proto: "udp", Port: 12000}},
		{Reject: &Reject{With: AdminProhibited}},
		{Reject: &Reject{With: TCPReset, Port: 80}},
	} {
		var err error
		if s.Drop != nil {
			err = ApplyDrop(ctx, Options{Netns: ours}, *s.Drop)
		} else {
			err = ApplyReject(ctx, Options{Netns: ours}, *s.Reject)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Commands() {
			if out, err := runIn(t, theirs, "sh", "-c", c); err != nil {
				t.Fatalf("%s: %v: %s", c, err, out)
			}
		}
		want, got := strip.ReplaceAllString(nftRuleset(t, ours), ""), strip.ReplaceAllString(nftRuleset(t, theirs), "")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: ruleset from the printed commands (-pinglab +nft):\n%s", s.Words()[0], diff)
		}
	}
}

// netemState applies 20% loss on lo in a fresh lab host and says whether the kernel has netem:
// the one precise test is to ask it.
func netemState(t *testing.T, h LabHost) error {
	t.Helper()
	err := ApplyNetem(context.Background(), Options{Netns: h.Netns}, Netem{Dev: "lo", Loss: 0.2})
	if err != nil && !errors.Is(err, ErrNetemMissing) {
		t.Fatalf("ApplyNetem on lo: %v", err)
	}
	return err
}

func TestNetemMissingError(t *testing.T) {
	l := testLab(t, 2)
	h := host(t, l, HostServer)
	err := netemState(t, h)
	tcOut, tcErr := "", error(nil)
	if _, lerr := exec.LookPath("tc"); lerr == nil {
		tcOut, tcErr = runIn(t, h.Netns, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "loss", "20%")
	}
	if err == nil {
		st, serr := Show(context.Background(), Options{Netns: h.Netns})
		if serr != nil || len(st.Netem) != 1 || st.Netem[0].Loss != 0.2 {
			t.Errorf("Show after netem: %+v, %v; want 20%% loss on lo", st, serr)
		}
		if tcErr != nil {
			t.Errorf("kernel has netem for pinglab but tc says: %v %s", tcErr, tcOut)
		}
		t.Logf("this kernel has netem")
		return
	}
	msg := err.Error()
	if !errors.Is(err, ErrNetemMissing) {
		t.Errorf("error %q is not ErrNetemMissing (cmd/pinglab words the way out for it)", msg)
	}
	for _, w := range []string{"netem is missing in this kernel", "Specified qdisc kind is unknown"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("error is not one line: %q", msg)
	}
	if tcOut != "" && (tcErr == nil || !strings.Contains(tcOut, "Specified qdisc kind is unknown")) {
		t.Errorf("pinglab says netem is missing, tc says: %v %s", tcErr, tcOut)
	}
}

func TestNetemMeasured(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	if err := netemState(t, server); err != nil {
		// The one skip PINGLAB_REQUIRE_ROOT_TESTS allows: a kernel without netem cannot run it.
		testutil.SkipForKernel(t, "this kernel has no netem: %v", err)
	}
	udpServer(t, server, 12000)
	dst := netip.AddrPortFrom(server.Addr(false), 12000)
	resolveNeighbours(t, client, dst)
	o := Options{Netns: server.Netns}
	if err := ApplyNetem(context.Background(), o, Netem{Dev: "eth0", Loss: 0.2}); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	_, got := replies(measure(t, client, server, dst, n))
	// 20% of 2000 has a standard deviation of 0.9%: 20 ± 3% is more than three of them.
	loss := 1 - float64(got[probe.EventReply])/n
	if loss < 0.17 || loss > 0.23 {
		t.Errorf("netem loss 20%%: %d of %d replies (%.1f%% lost), want 20 ± 3%% lost (events %v)", got[probe.EventReply], n, 100*loss, got)
	} else {
		t.Logf("netem loss 20%% on the server's eth0: %d of %d replies, %.2f%% lost", got[probe.EventReply], n, 100*loss)
	}
	if err := Clear(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if st, err := Show(context.Background(), o); err != nil || !st.Empty() {
		t.Errorf("after Clear: %+v %v", st, err)
	}
}

// resolveNeighbours sends a few probes before an impairment goes on, so that the neighbour
// (ARP) exchange is done: netem acts on every packet that leaves, ARP replies too, and a lost
// one holds the first probes in the neighbour queue for a second or drops them, which would
// be counted as netem's loss.
func resolveNeighbours(t *testing.T, client LabHost, dst netip.AddrPort) {
	t.Helper()
	if got, _ := udpRun(t, client, dst, probe.Options{Count: 5, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}); got[probe.EventReply] != 5 {
		t.Fatalf("before netem: %v, want 5 replies", got)
	}
}

// startHolder runs the re-executed test binary holding a drop in the namespace.
func startHolder(t *testing.T, ns string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+ns)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "applied\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("holder said %q, %v", line, err)
	}
	return cmd
}

func TestSignals(t *testing.T) {
	l := testLab(t, 2)
	ctx := context.Background()
	o := Options{Netns: host(t, l, HostServer).Netns}

	cmd := startHolder(t, o.Netns)
	if st, err := Show(ctx, o); err != nil || st.Drop == nil {
		t.Fatalf("while held: %+v %v, want a drop", st, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder after SIGTERM: %v", err)
	}
	if st, err := Show(ctx, o); err != nil || !st.Empty() {
		t.Errorf("after SIGTERM: %+v %v, want nothing left", st, err)
	}
	if rs := nftRuleset(t, o.Netns); strings.Contains(rs, "pinglab") {
		t.Errorf("after SIGTERM nft lists:\n%s", rs)
	}

	for _, next := range []string{"clear", "apply"} {
		cmd := startHolder(t, o.Netns)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if st, err := Show(ctx, o); err != nil || st.Drop == nil {
			t.Fatalf("after SIGKILL: %+v %v, want the drop left behind", st, err)
		}
		var want State
		switch next {
		case "clear":
			want = State{Netns: o.Netns}
			if err := Clear(ctx, o); err != nil {
				t.Fatal(err)
			}
		case "apply":
			r := Reject{With: HostUnreachable}
			want = State{Netns: o.Netns, Reject: &r, Table: true}
			if err := ApplyReject(ctx, o, r); err != nil {
				t.Fatal(err)
			}
		}
		st, err := Show(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, st, netipCmp); diff != "" {
			t.Errorf("SIGKILL then %s (-want +got):\n%s", next, diff)
		}
	}
}

func TestStartIn(t *testing.T) {
	l := testLab(t, 2)
	h := host(t, l, HostClient)
	out, err := runIn(t, h.Netns, "cat", "/proc/net/dev")
	if err != nil || !strings.Contains(out, "eth0") {
		t.Errorf("cat /proc/net/dev in %s: %v\n%s", h.Netns, err, out)
	}
	// The caller's thread is back where it was: this namespace has no lab eth0 with our address.
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifs {
			if strings.HasPrefix(a.String(), "10.77.1.1/") {
				t.Errorf("the test's own namespace has the client's address %s", a)
			}
		}
	}
	cmd := exec.Command("true")
	if err := LabExec(context.Background(), "nosuch", cmd, WithPrefix(l.Prefix)); err == nil {
		t.Errorf("LabExec on host nosuch: no error")
	}
}

func TestLabUpLeavesOthers(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("plt%d-other-", os.Getpid())
	t.Cleanup(func() { _ = LabDown(ctx, WithPrefix(prefix)) })
	ns, err := newNamed(prefix + HostServer)
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	if _, err := LabUp(ctx, 2, WithPrefix(prefix)); !errors.Is(err, ErrLabExists) || !strings.Contains(err.Error(), prefix+HostServer) {
		t.Fatalf("LabUp over an existing %sserver: %v, want ErrLabExists naming it", prefix, err)
	}
	if !exists("/run/netns/"+prefix+HostServer) || exists("/run/netns/"+prefix+HostClient) {
		t.Errorf("a failed LabUp changed the namespaces")
	}
	// The half-made path: buildLab meets the namespace itself and removes only what it made.
	var made []string
	plan, _ := labPlan(2, prefix)
	if err := buildLab(ctx, plan, &made); !errors.Is(err, ErrLabExists) {
		t.Fatalf("buildLab over an existing namespace: %v, want ErrLabExists", err)
	}
	if err := removeNamed(ctx, made); err != nil {
		t.Fatal(err)
	}
	if !exists("/run/netns/"+prefix+HostServer) || exists("/run/netns/"+prefix+HostClient) {
		t.Errorf("cleaning up after buildLab removed %v and left %v", made, plan)
	}
}
