package icmpping

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
)

// A namespace is a network namespace a test created; it is removed when the test ends.
type namespace struct {
	name string
	h    netns.NsHandle
}

func newNamespace(t *testing.T, role string) *namespace {
	t.Helper()
	name := fmt.Sprintf("icmpping-%d-%s", os.Getpid(), role)
	return &namespace{name: name, h: testutil.NewNetns(t, name)}
}

// do runs fn on a thread inside the namespace: sockets fn opens and processes it starts live there.
func (ns *namespace) do(t *testing.T, fn func()) { t.Helper(); testutil.InNetns(t, ns.h, fn) }

func (ns *namespace) link(t *testing.T, fn func(*netlink.Handle) error) {
	t.Helper()
	testutil.WithNetlink(t, ns.h, fn)
}

func (ns *namespace) sysctl(t *testing.T, path, value string) {
	t.Helper()
	ns.do(t, func() {
		if err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644); err != nil {
			t.Fatalf("%s: sysctl %s: %v", ns.name, path, err)
		}
	})
}

// run runs a program in the namespace and returns its output; a non-zero exit is no error here
// (ping exits 1 when no reply came), failing to start is.
func (ns *namespace) run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	var out []byte
	ns.do(t, func() {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var err error
		out, err = cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("%s: %s: %v", ns.name, name, err)
		}
	})
	return string(out)
}

// A lab is three hosts in a row: client - router - server, on 10.77.1.0/24 and 10.77.2.0/24
// (fd77:1::/64 and fd77:2::/64).
type lab struct {
	client, router, server *namespace
}

var (
	server4 = netip.MustParseAddr("10.77.2.2")
	server6 = netip.MustParseAddr("fd77:2::2")
	router4 = netip.MustParseAddr("10.77.1.1")
	router6 = netip.MustParseAddr("fd77:1::1")
)

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{client: newNamespace(t, "client"), router: newNamespace(t, "router"), server: newNamespace(t, "server")}
	veth := func(a *namespace, an string, b *namespace, bn string) {
		a.link(t, func(nh *netlink.Handle) error {
			return nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: an}, PeerName: bn, PeerNamespace: netlink.NsFd(int(b.h))})
		})
	}
	veth(l.client, "c0", l.router, "r0")
	veth(l.router, "r1", l.server, "s0")
	setup := func(ns *namespace, dev string, addrs []string, gws []string) {
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
				if err := nh.AddrAdd(link, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
					return fmt.Errorf("add %s: %w", a, err)
				}
			}
			if err := nh.LinkSetUp(link); err != nil {
				return err
			}
			for _, gw := range gws {
				if err := nh.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
					return fmt.Errorf("route via %s: %w", gw, err)
				}
			}
			return nil
		})
	}
	setup(l.client, "c0", []string{"10.77.1.2/24", "fd77:1::2/64"}, []string{"10.77.1.1", "fd77:1::1"})
	setup(l.router, "r0", []string{"10.77.1.1/24", "fd77:1::1/64"}, nil)
	setup(l.router, "r1", []string{"10.77.2.1/24", "fd77:2::1/64"}, nil)
	setup(l.server, "s0", []string{"10.77.2.2/24", "fd77:2::2/64"}, []string{"10.77.2.1", "fd77:2::1"})
	l.router.sysctl(t, "net/ipv4/ip_forward", "1")
	l.router.sysctl(t, "net/ipv6/conf/all/forwarding", "1")
	// Errors for every probe, not one a second: the comparisons send several in a row.
	// And no global budget either (1000 errors a second, bursts of 50 less a random share):
	// a trace sends 16 probes at once, and the tests trace back to back.
	for _, ns := range []*namespace{l.router, l.server} {
		ns.sysctl(t, "net/ipv4/icmp_ratelimit", "0")
		ns.sysctl(t, "net/ipv6/icmp/ratelimit", "0")
		ns.sysctl(t, "net/ipv4/icmp_msgs_per_sec", "100000")
		ns.sysctl(t, "net/ipv4/icmp_msgs_burst", "100000")
	}
	l.client.sysctl(t, "net/ipv4/ping_group_range", "0 2147483647")
	// The first packets wait for neighbour discovery; make sure the path works end to end.
	for _, target := range []netip.Addr{server4, server6} {
		var c *Conn
		l.client.do(t, func() { c = dial(t, Config{Target: target, Privileged: true}) })
		if p := pingOnce(t, c, 1); p.Kind != probe.KindReply {
			t.Fatalf("lab: %s does not answer: %+v", target, p)
		}
		c.Close()
	}
	return l
}

func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testutil.SkipOrFail(t, "%s not installed (Debian package %s)", name, pkg)
	}
}

var fromLine = regexp.MustCompile(`(?m)^From (\S+) icmp_seq=1 (.+)$`)

// pingSays runs iputils ping once in the client and returns who answered and its words.
func pingSays(t *testing.T, l *lab, args ...string) (from, words string) {
	t.Helper()
	out := l.client.run(t, "", "ping", append([]string{"-n", "-c", "1", "-W", "3"}, args...)...)
	m := fromLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping %v printed no error line:\n%s", args, out)
	}
	return m[1], strings.TrimSpace(m[2])
}

// pinglabSays sends probes from the client in each socket mode and returns the error they met.
func pinglabSays(t *testing.T, l *lab, cfg Config) map[bool][2]string {
	t.Helper()
	got := map[bool][2]string{}
	for _, raw := range []bool{false, true} {
		cfg.Privileged = raw
		var c *Conn
		l.client.do(t, func() { c = dial(t, cfg) })
		// Three in a row: the error one probe meets must not fail the next one's send.
		for seq := 1; seq <= 3; seq++ {
			p := pingOnce(t, c, seq)
			if p.Kind != probe.KindError || p.Err == nil {
				t.Errorf("raw=%v seq %d: got %+v, want an ICMP error", raw, seq, p)
				continue
			}
			w := [2]string{p.From, p.Err.Words()}
			if seq > 1 && w != got[raw] {
				t.Errorf("raw=%v seq %d: %q, seq 1 got %q", raw, seq, w, got[raw])
			}
			got[raw] = w
		}
		c.Close()
	}
	return got
}

// TestLab runs everything that needs the three-host lab on one lab, since building it costs.
func TestLab(t *testing.T) {
	needTool(t, "nft", "nftables")
	l := newLab(t)
	t.Run("RejectWordsMatchPing", func(t *testing.T) { testRejectWords(t, l) })
	t.Run("TTLExceededMatchesPing", func(t *testing.T) { testTTLExceeded(t, l) })
	t.Run("TraceMatchesTraceroute", func(t *testing.T) { testTraceMatches(t, l) })
	t.Run("Unprivileged", func(t *testing.T) { testUnprivileged(t, l) })
}

func testRejectWords(t *testing.T, l *lab) {
	needTool(t, "ping", "iputils-ping")
	tests := []struct {
		target netip.Addr
		rule   string
	}{
		{server4, "icmp type echo-request reject with icmp type net-unreachable"},
		{server4, "icmp type echo-request reject with icmp type host-unreachable"},
		{server4, "icmp type echo-request reject with icmp type prot-unreachable"},
		{server4, "icmp type echo-request reject with icmp type port-unreachable"},
		{server4, "icmp type echo-request reject with icmp type net-prohibited"},
		{server4, "icmp type echo-request reject with icmp type host-prohibited"},
		{server4, "icmp type echo-request reject with icmp type admin-prohibited"},
		{server6, "icmpv6 type echo-request reject with icmpv6 type no-route"},
		{server6, "icmpv6 type echo-request reject with icmpv6 type admin-prohibited"},
		{server6, "icmpv6 type echo-request reject with icmpv6 type addr-unreachable"},
		{server6, "icmpv6 type echo-request reject with icmpv6 type port-unreachable"},
		{server6, "icmpv6 type echo-request reject with icmpv6 type policy-fail"},
		{server6, "icmpv6 type echo-request reject with icmpv6 type reject-route"},
	}
	for _, tt := range tests {
		name := tt.rule[strings.LastIndex(tt.rule, " ")+1:] + "-v" + map[bool]string{true: "4", false: "6"}[tt.target.Is4()]
		t.Run(name, func(t *testing.T) {
			out := l.server.run(t, fmt.Sprintf(`
table inet icmpping
delete table inet icmpping
table inet icmpping {
	chain in {
		type filter hook input priority 0; policy accept;
		%s
	}
}
`, tt.rule), "nft", "-f", "-")
			if out != "" {
				t.Fatalf("nft: %s", out)
			}
			t.Cleanup(func() { l.server.run(t, "", "nft", "delete", "table", "inet", "icmpping") })
			from, words := pingSays(t, l, tt.target.String())
			// iputils before 20240117 knows no words for ICMPv6 codes 5 and 6 (RFC 4443's
			// policy failure and reject route); icmperr has today's.
			if old := regexp.MustCompile(`^Destination unreachable: Unknown code ([56])$`).FindStringSubmatch(words); old != nil {
				words = (&icmperr.Error{V6: true, Type: 1, Code: int(old[1][0] - '0')}).Words()
			}
			for raw, got := range pinglabSays(t, l, Config{Target: tt.target}) {
				if want := [2]string{from, words}; got != want {
					t.Errorf("raw=%v: pinglab says %q, ping says %q", raw, got, want)
				}
			}
			t.Logf("ping and pinglab: From %s %s", from, words)
		})
	}
}

func testTTLExceeded(t *testing.T, l *lab) {
	needTool(t, "ping", "iputils-ping")
	for _, tt := range []struct {
		target, router netip.Addr
		words          string
	}{
		{server4, router4, "Time to live exceeded"},
		{server6, router6, "Time exceeded: Hop limit"},
	} {
		t.Run(tt.target.String(), func(t *testing.T) {
			from, words := pingSays(t, l, "-t", "1", tt.target.String())
			if want := [2]string{tt.router.String(), tt.words}; [2]string{from, words} != want {
				t.Errorf("ping says %q %q, want %q", from, words, want)
			}
			for raw, got := range pinglabSays(t, l, Config{Target: tt.target, TTL: 1}) {
				if want := [2]string{from, words}; got != want {
					t.Errorf("raw=%v: pinglab says %q, ping says %q", raw, got, want)
				}
			}
		})
	}
}

var hopLine = regexp.MustCompile(`(?m)^\s*(\d+)\s+(\S+)`)

// tracerouteHops runs traceroute -n in the client and returns each hop's first address.
func tracerouteHops(t *testing.T, l *lab, args ...string) []string {
	t.Helper()
	out := l.client.run(t, "", "traceroute", append([]string{"-n", "-q", "1", "-w", "3"}, args...)...)
	var hops []string
	for _, m := range hopLine.FindAllStringSubmatch(out, -1) {
		hops = append(hops, m[2])
	}
	if len(hops) == 0 {
		t.Fatalf("traceroute %v:\n%s", args, out)
	}
	return hops
}

func testTraceMatches(t *testing.T, l *lab) {
	needTool(t, "traceroute", "traceroute")
	for _, target := range []netip.Addr{server4, server6} {
		for _, proto := range []string{"udp", "icmp"} {
			t.Run(proto+"-"+target.String(), func(t *testing.T) {
				args := []string{target.String()}
				if proto == "icmp" {
					args = append([]string{"-I"}, args...)
				}
				if target.Is6() {
					args = append([]string{"-6"}, args...)
				}
				want := tracerouteHops(t, l, args...)
				var got []string
				var last Hop
				var all []Hop
				defer func() {
					if t.Failed() {
						for _, h := range all {
							t.Logf("hop %d: %+v", h.TTL, h.Probes)
						}
					}
				}()
				l.client.do(t, func() {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					err := Trace(ctx, TraceConfig{Target: target, Proto: proto, Wait: 3 * time.Second}, func(h Hop) {
						got = append(got, h.Probes[0].From.String())
						last = h
						all = append(all, h)
					})
					if err != nil {
						t.Fatal(err)
					}
				})
				if diff := fmt.Sprint(want); diff != fmt.Sprint(got) {
					t.Errorf("hops: traceroute -n %v, pinglab %v", want, got)
				}
				for _, p := range last.Probes {
					if !p.Reached || p.Annotation() != "" || p.RTT <= 0 {
						t.Errorf("last hop probe %+v: want reached, no annotation, an RTT", p)
					}
				}
			})
		}
	}
	t.Run("unreachable annotation", func(t *testing.T) {
		l.server.run(t, `table inet icmpping
delete table inet icmpping
table inet icmpping {
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport >= 33434 reject with icmp type host-unreachable
	}
}
`, "nft", "-f", "-")
		t.Cleanup(func() { l.server.run(t, "", "nft", "delete", "table", "inet", "icmpping") })
		out := l.client.run(t, "", "traceroute", "-n", "-q", "1", "-w", "3", server4.String())
		if !strings.Contains(out, "!H") {
			t.Fatalf("traceroute shows no !H:\n%s", out)
		}
		var hops []Hop
		l.client.do(t, func() {
			err := Trace(context.Background(), TraceConfig{Target: server4, Queries: 1, Wait: 3 * time.Second}, func(h Hop) { hops = append(hops, h) })
			if err != nil {
				t.Fatal(err)
			}
		})
		if len(hops) != 2 || hops[1].Probes[0].Annotation() != "!H" || hops[1].Probes[0].From != server4 {
			t.Errorf("hops %+v, want the trace to end at hop 2 with !H", hops)
		}
	})
}

// childBinary copies this test binary where an unprivileged user can run it.
func childBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "icmpping-child-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "icmpping.test")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// asNobody runs the test binary as uid/gid 65534 in ns, doing what spec says.
func asNobody(t *testing.T, ns *namespace, bin, spec string) string {
	t.Helper()
	var out []byte
	ns.do(t, func() {
		cmd := exec.Command(bin)
		cmd.Env = []string{childEnv + "=" + spec}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var err error
		out, err = cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("run %s as nobody: %v", bin, err)
		}
	})
	return strings.TrimSpace(string(out))
}

func testUnprivileged(t *testing.T, l *lab) {
	bin := childBinary(t)
	tests := []struct {
		ns   *namespace
		spec string
		want string
	}{
		{l.client, "ping " + server4.String(), "raw=false kind=1 seq=1 from=10.77.2.2 bytes=64"},
		{l.client, "ping " + server6.String(), "raw=false kind=1 seq=1 from=fd77:2::2 bytes=64"},
		{l.client, "trace-udp " + server4.String(), "hops=10.77.1.1,10.77.2.2"},
		{l.client, "trace-icmp " + server4.String(), "hops=10.77.1.1,10.77.2.2"},
		{l.client, "trace-udp " + server6.String(), "hops=fd77:1::1,fd77:2::2"},
	}
	for _, tt := range tests {
		if got := asNobody(t, tt.ns, bin, tt.spec); got != tt.want {
			t.Errorf("%s as nobody: %q, want %q", tt.spec, got, tt.want)
		}
	}
	// The server's namespace keeps the default ping_group_range ("1 0"): nobody gets no socket,
	// and the error says why (the ways out are pinglab's command to give: cmd/pinglab tests them).
	got := asNobody(t, l.server, bin, "ping 127.0.0.1")
	for _, want := range []string{"cannot open an ICMP socket", "permission denied", `net.ipv4.ping_group_range "1 0"`, "CAP_NET_RAW"} {
		if !strings.Contains(got, want) {
			t.Errorf("no socket error %q lacks %q", got, want)
		}
	}
}
