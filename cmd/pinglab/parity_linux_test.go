package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/testutil"
	"github.com/pinglab/pinglab/lossy"
)

// The differential tests run iputils ping (and traceroute) beside pinglab in a lab of three
// namespaces, client - router - server, and compare what each printed, with what changes from
// run to run (times) normalised: every line of stdout and stderr equal, exit codes equal.

// A parityLab is the three namespaces, their names for addresses (/etc/netns/NS/hosts, which
// `ip netns exec` binds over /etc/hosts) and a resolver that answers nothing at once.
type parityLab struct {
	info lossy.LabInfo
	self string // the test binary
}

// Lab addresses and the names the client's hosts file gives them.
const (
	labServer4 = "10.77.2.2"
	labServer6 = "fd00:77:2::2"
	labRouter4 = "10.77.1.254"
	labRouter6 = "fd00:77:1::fe"
	labClient4 = "10.77.1.1"
	labClient6 = "fd00:77:1::1"
)

const labHosts = `127.0.0.1 localhost
10.77.2.2 server.lab
fd00:77:2::2 server.lab
10.77.1.254 router.lab
fd00:77:1::fe router.lab
10.77.1.1 client.lab
fd00:77:1::1 client.lab
10.77.2.254 router2.lab
fd00:77:2::fe router2.lab
`

func newParityLab(t *testing.T) *parityLab {
	t.Helper()
	testutil.RequireRoot(t)
	for _, tool := range [][2]string{{"ping", "iputils-ping"}, {"traceroute", "traceroute"}, {"ip", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			testutil.SkipOrFail(t, "%s not installed (Debian package %s)", tool[0], tool[1])
		}
	}
	prefix := fmt.Sprintf("par%d-", os.Getpid())
	ctx := context.Background()
	info, err := lossy.LabUp(ctx, 3, lossy.WithPrefix(prefix))
	if err != nil {
		testutil.SkipOrFail(t, "lab up: %v", err)
	}
	t.Cleanup(func() { _ = lossy.LabDown(context.Background(), lossy.WithPrefix(prefix)) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := &parityLab{info: info, self: self}
	for _, h := range info.Hosts {
		dir := filepath.Join("/etc/netns", h.Netns)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		// The resolver is this namespace's own loopback, where nothing listens: a name that is
		// not in the hosts file fails at once, and no query leaves the lab.
		files := map[string]string{"hosts": labHosts, "resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Neighbour discovery before the first case, so that no case loses its first probe to it.
	for _, dst := range []string{labServer4, labServer6} {
		if r := l.exec(t, "client", []string{"ping", "-n", "-c", "1", "-W", "5", dst}, ""); r.code != 0 {
			t.Fatalf("lab: %s does not answer: %+v", dst, r)
		}
	}
	return l
}

func (l *parityLab) netns(host string) string {
	h, ok := l.info.Host(host)
	if !ok {
		panic("no lab host " + host)
	}
	return h.Netns
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// exec runs argv in a lab host through `ip netns exec`, so that it sees the host's hosts file.
func (l *parityLab) exec(t *testing.T, host string, argv []string, env string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.netns(host)}, argv...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v: %v", host, argv, err)
	}
	return r
}

// pinglab runs pinglab with args in a lab host.
func (l *parityLab) pinglab(t *testing.T, host string, args []string) result {
	t.Helper()
	return l.exec(t, host, append([]string{l.self}, args...), asPinglabEnv+"=1")
}

// both runs the real tool and pinglab's command with the same arguments at the same time.
func (l *parityLab) both(t *testing.T, host, tool string, args []string) (real, ours result) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		real = l.exec(t, host, append([]string{tool}, args...), "")
	}()
	sub := map[string]string{"ping": "ping", "traceroute": "trace"}[tool]
	ours = l.pinglab(t, host, append([]string{sub}, args...))
	wg.Wait()
	return real, ours
}

// nft loads ruleset into a lab host's own nftables table until the test ends.
func (l *parityLab) nft(t *testing.T, host, rules string) {
	t.Helper()
	ruleset := "table inet parity\ndelete table inet parity\ntable inet parity {\n" + rules + "\n}\n"
	ctx := context.Background()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.netns(host), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", host, err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "exec", l.netns(host), "nft", "delete", "table", "inet", "parity").Run()
	})
}

// ip runs an ip(8) command in a lab host; undo is run when the test ends.
func (l *parityLab) ip(t *testing.T, host string, do, undo string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", l.netns(host)}, strings.Fields(do)...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s in %s: %v: %s", do, host, err, out)
	}
	if undo != "" {
		t.Cleanup(func() {
			_ = exec.Command("ip", append([]string{"-n", l.netns(host)}, strings.Fields(undo)...)...).Run()
		})
	}
}

// What changes from run to run, and what names the program, replaced by fixed words.
var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`time=[0-9.]+ ms`), "time=T ms"},
	{regexp.MustCompile(`= [0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+ ms`), "= R ms"},
	{regexp.MustCompile(`, time [0-9]+ms`), ", time Tms"},
	{regexp.MustCompile(`(?m)^\[[0-9]+\.[0-9]{6}\] `), "[TS] "},
	{regexp.MustCompile(`, ipg/ewma [0-9.]+/[0-9.]+ ms`), ", ipg/ewma R ms"},
	{regexp.MustCompile(`ident=[0-9]+`), "ident=I"},
	{regexp.MustCompile(`(?m)^pinglab ping: `), "ping: "},
	{regexp.MustCompile(`(?m)^pinglab trace: `), "traceroute: "},
	{regexp.MustCompile(`  [0-9]+\.[0-9]{3} ms`), "  T ms"},
}

func normalise(s string) string {
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// A parityCase is one command line, run with iputils ping (or traceroute) and with pinglab.
type parityCase struct {
	name string
	args []string
	// setup prepares the lab for the case (rules, routes); what it does is undone after.
	setup func(t *testing.T, l *parityLab)
	// differs, when set, says why the outputs cannot be equal; the exit codes still must be,
	// unless codeDiffers says why they cannot.
	differs, codeDiffers string
	// serial runs the two one after the other: with the same -e identifier, each would take
	// the other's replies for its own; and to time each alone.
	serial bool
	// maxTime, when set, is the most pinglab may take, as a multiple of the real tool's time.
	maxTime float64
}

// usageExit is why pinglab's exit code differs on bad usage: Debian's iputils 20221126 exits 1;
// upstream iputils (since 20240117: ping-02-errors.t expects 2) and pinglab's rule exit 2.
const usageExit = "Debian's iputils 20221126 exits 1 on usage errors, upstream iputils and pinglab 2"

func (l *parityLab) compare(t *testing.T, tool string, tc parityCase) {
	t.Helper()
	if tc.setup != nil {
		tc.setup(t, l)
	}
	var real, ours result
	if tc.serial {
		real = l.exec(t, "client", append([]string{tool}, tc.args...), "")
		ours = l.pinglab(t, "client", append([]string{map[string]string{"ping": "ping", "traceroute": "trace"}[tool]}, tc.args...))
	} else {
		real, ours = l.both(t, "client", tool, tc.args)
	}
	if tc.maxTime > 0 {
		t.Logf("%s %v: %v, pinglab %v", tool, tc.args, real.took.Round(time.Millisecond), ours.took.Round(time.Millisecond))
		if limit := time.Duration(tc.maxTime * float64(real.took)); ours.took > limit {
			t.Errorf("%s %v took %v, pinglab %v: more than %.1f×", tool, tc.args, real.took, ours.took, tc.maxTime)
		}
	}
	switch {
	case real.code != ours.code && tc.codeDiffers != "":
		t.Logf("%s %v: exit %d, pinglab exits %d, as expected: %s", tool, tc.args, real.code, ours.code, tc.codeDiffers)
	case real.code != ours.code:
		t.Errorf("%s %v: exit %d, pinglab exits %d", tool, tc.args, real.code, ours.code)
	}
	want := normalise(real.stdout) + "--- stderr\n" + normalise(real.stderr)
	got := normalise(ours.stdout) + "--- stderr\n" + normalise(ours.stderr)
	if diff := cmp.Diff(want, got); diff != "" {
		if tc.differs != "" {
			t.Logf("%s %v differs as expected (%s) (-%s +pinglab):\n%s", tool, tc.args, tc.differs, tool, diff)
			return
		}
		t.Errorf("%s %v (-%s +pinglab):\n%s", tool, tc.args, tool, diff)
	}
}

func pingCases() []parityCase {
	unreachable := func(kind string) func(t *testing.T, l *parityLab) {
		return func(t *testing.T, l *parityLab) {
			l.ip(t, "client", "route add "+kind+" 10.99.0.0/16", "route del "+kind+" 10.99.0.0/16")
			l.ip(t, "client", "-6 route add "+kind+" fd99::/16", "-6 route del "+kind+" fd99::/16")
		}
	}
	reject := func(with string) func(t *testing.T, l *parityLab) {
		return func(t *testing.T, l *parityLab) {
			l.nft(t, "server", "chain in {\ntype filter hook input priority 0; policy accept;\n"+with+"\n}")
		}
	}
	c := func(args ...string) []string { return append([]string{"-c", "2", "-i", "0.2"}, args...) }
	return []parityCase{
		{name: "v4", args: c(labServer4)},
		{name: "v6", args: c(labServer6)},
		{name: "numeric-v4", args: c("-n", labServer4)},
		{name: "name-v4", args: c("server.lab")},
		{name: "name-v6", args: c("-6", "server.lab")},
		{name: "name-numeric", args: c("-n", "server.lab")},
		{name: "force-names", args: c("-H", labServer4), differs: noOption, codeDiffers: noOption},
		{name: "localhost", args: c("localhost")},
		{name: "localhost-v6-only", args: c("-6", "localhost")},
		{name: "unknown-name", args: c("nosuch.lab")},
		{name: "any-address", args: c("0.0.0.0")},
		{name: "quiet", args: c("-q", labServer4)},
		{name: "size-0", args: c("-s", "0", labServer4)},
		{name: "size-1", args: c("-s", "1", labServer4)},
		{name: "size-8", args: c("-s", "8", labServer4)},
		{name: "size-15", args: c("-s", "15", labServer4)},
		{name: "size-16", args: c("-s", "16", labServer4)},
		{name: "size-1000-v6", args: c("-s", "1000", labServer6)},
		{name: "ttl-1", args: c("-t", "1", labServer4)},
		{name: "ttl-1-v6", args: c("-t", "1", labServer6)},
		{name: "outstanding", args: c("-O", "-W", "0.3", "10.77.2.99")},
		{name: "no-answer", args: c("-W", "0.3", "10.77.2.99")},
		{name: "deadline", args: []string{"-w", "1", labServer4}},
		{name: "count-deadline", args: []string{"-c", "2", "-w", "3", labServer4}},
		{name: "host-unreachable", args: c(labServer4), setup: reject("icmp type echo-request reject with icmp type host-unreachable")},
		{name: "port-unreachable-v6", args: c(labServer6), setup: reject("icmpv6 type echo-request reject with icmpv6 type port-unreachable")},
		{name: "prohibited", args: c(labServer4), setup: reject("icmp type echo-request reject with icmp type admin-prohibited")},
		{name: "route-unreachable", args: c("10.99.0.1"), setup: unreachable("unreachable")},
		{name: "route-unreachable-v6", args: c("fd99::1"), setup: unreachable("unreachable")},
		{name: "route-prohibit", args: c("10.99.0.1"), setup: unreachable("prohibit")},
		{name: "route-blackhole", args: c("10.99.0.1"), setup: unreachable("blackhole")},
		{name: "broadcast-without-b", args: c("10.77.1.255")},
		{name: "pattern", args: c("-p", "ff00", labServer4)},
		{name: "tos", args: c("-Q", "0x10", labServer4)},
		{name: "interface", args: c("-I", "eth0", labServer4)},
		{name: "source", args: c("-I", labClient4, labServer4)},
		{name: "timestamps", args: c("-D", labServer4)},
		{name: "verbose", args: c("-v", labServer4), differs: "pinglab prints no ident=; " + "ping -v prints its getaddrinfo and socket details (ai_family, sock4.fd ...), which are iputils' own"},
		{name: "unrounded", args: c("-3", labServer4), differs: noOption, codeDiffers: noOption},
		{name: "pmtu-do", args: c("-M", "do", "-s", "2000", labServer4), differs: "pinglab prints a local error as a From line, ping on stderr with the MTU"},
		{name: "preload", args: []string{"-c", "3", "-l", "3", labServer4}, differs: notYet, codeDiffers: notYet},
		{name: "adaptive", args: []string{"-c", "3", "-A", labServer4}, differs: notYet, codeDiffers: notYet},
		{name: "mark", args: c("-m", "7", labServer4)},
		{name: "identifier", args: c("-e", "4242", labServer4), serial: true},
		{name: "bad-count", args: []string{"-c", "0", labServer4}, codeDiffers: usageExit},
		{name: "bad-ttl", args: []string{"-t", "0", labServer4}, codeDiffers: usageExit},
		{name: "size-max-v4", args: []string{"-c", "1", "-s", "65507", labServer4}},
		{name: "no-host", args: []string{}, codeDiffers: usageExit},
		{name: "bad-ttl-256", args: []string{"-t", "256", labServer4}, codeDiffers: usageExit},
	}
}

// notYet marks the options pinglab ping does not have yet: the probe engine has no preload
// burst (-l) and no adaptive interval (-A).
const notYet = "pinglab has no -l and -A yet: the engine has no preload burst or adaptive interval"

// noOption is why a case differs: an option of iputils newer than Debian's 20221126.
const noOption = "Debian's iputils 20221126 lacks this option (upstream has it since 20240117)"

// TestParity compares pinglab ping and trace with iputils ping and traceroute, case by case,
// in one lab: the differential cases, iputils' own meson.build cases and the checks of its
// test scripts.
func TestParity(t *testing.T) {
	l := newParityLab(t)
	t.Run("ping", func(t *testing.T) {
		for _, tc := range pingCases() {
			t.Run(tc.name, func(t *testing.T) {
				if strings.HasPrefix(tc.name, "name-") {
					// In the VM pinglab is built without cgo, so Go's own resolver, not glibc's
					// getaddrinfo as ping's, picks among server.lab's addresses.
					testutil.HostOnly(t, "a static pinglab resolves names with Go's resolver, ping with glibc's")
				}
				l.compare(t, "ping", tc)
			})
		}
	})
	t.Run("trace", func(t *testing.T) {
		for _, tc := range traceCases() {
			t.Run(tc.name, func(t *testing.T) { l.compare(t, "traceroute", tc) })
		}
	})
	t.Run("meson", func(t *testing.T) { testMeson(t, l) })
	t.Run("client-socket-flags", func(t *testing.T) { testClientSocketFlags(t, l) })
	t.Run("scripts", func(t *testing.T) {
		testutil.HostOnly(t, "iputils' own test patterns want a loopback round trip below 1 ms, which the emulated CPU does not give")
		testIputilsScripts(t, l)
	})
}

// mesonCases are the command lines of iputils' test/ping/meson.build (upstream, 2025), as root,
// with IPv6 on: each must exit 0, or fail (exit non-zero) where meson says should_fail. The
// list is ours, written from that file; its code is not copied.
func mesonCases() []struct {
	args []string
	fail bool
} {
	type mc = struct {
		args []string
		fail bool
	}
	cases := []mc{{[]string{"-V"}, false}}
	for _, dst := range []string{"localhost", "127.0.0.1", "::1"} {
		for _, sw := range []string{"", "-4", "-6"} {
			args := []string{"-c1", dst}
			if sw != "" {
				args = append([]string{sw}, args...)
			}
			cases = append(cases, mc{args, (sw == "-4" && dst == "::1") || (sw == "-6" && dst == "127.0.0.1")})
		}
	}
	for _, dst := range []string{"127.0.0.1", "::1"} {
		for _, a := range [][]string{{"-c1"}, {"-c5", "-i0.1"}, {"-c1", "-I", "lo"}, {"-c1", "-w1"}, {"-c1", "-W1"}, {"-c1", "-W1.1"}} {
			cases = append(cases, mc{append(a, dst), false})
		}
		for _, a := range [][]string{{"-c1.1"}, {"-I", "nonexisting"}, {"-w0.1"}, {"-w0,1"}} {
			cases = append(cases, mc{append(a, dst), true})
		}
		// As root, -i below 2 ms is allowed (meson: should_fail is "not root").
		cases = append(cases, mc{[]string{"-c1", "-i0.001", dst}, false})
	}
	return cases
}

// testMeson runs meson.build's cases with Debian's ping and with pinglab: every case Debian's
// ping passes, pinglab passes too. Run in the lab's client, whose hosts file, as this
// machine's, names localhost for IPv4 only: "-6 localhost" then fails for both, and is
// reported, not failed, when Debian's ping fails it too.
func testMeson(t *testing.T, l *parityLab) {
	passedReal, passedOurs := 0, 0
	cases := mesonCases()
	for _, mc := range cases {
		t.Run(strings.Join(mc.args, " "), func(t *testing.T) {
			real, ours := l.both(t, "client", "ping", mc.args)
			pass := func(r result) bool { return (r.code != 0) == mc.fail }
			if pass(real) {
				passedReal++
			}
			if pass(ours) {
				passedOurs++
			}
			switch {
			case pass(real) && !pass(ours):
				t.Errorf("ping %v: Debian's ping passes (exit %d), pinglab fails (exit %d):\n%s%s", mc.args, real.code, ours.code, ours.stdout, ours.stderr)
			case !pass(real):
				t.Logf("ping %v: Debian's ping fails this case here too (exit %d: %s)", mc.args, real.code, strings.TrimSpace(real.stderr))
			}
		})
	}
	t.Logf("meson.build cases passed: Debian's ping %d of %d, pinglab %d", passedReal, len(cases), passedOurs)
}

// The checks of iputils' test/ping/ping-01-basics.t and ping-02-errors.t (upstream, 2025),
// written anew as regular expressions over the whole output: each must hold for Debian's ping
// and for pinglab, with the program's name where the script puts "$ping".
func testIputilsScripts(t *testing.T, l *parityLab) {
	const rtt = `rtt min/avg/max/mdev = \d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3} ms`
	tests := []struct {
		args   []string
		code   int
		stdout string // a regexp the whole stdout must match; "" checks nothing
		stderr string // the exact stderr, with PROG for the program's name; "-" checks nothing
		debian string // why Debian's ping is not held to it
	}{
		{args: []string{"-V"}, stdout: `^ping from iputils .*\nlibcap: (yes|no), IDN: (yes|no), NLS: (yes|no), error.h: (yes|no), getrandom\(\): (yes|no), __fpending\(\): (yes|no)\n$`, stderr: ""},
		{args: []string{"-c1", "127.0.0.1"}, stdout: `^PING 127\.0\.0\.1 \(127\.0\.0\.1\) 56\(84\) bytes of data\.
64 bytes from 127\.0\.0\.1: icmp_seq=1 ttl=\d+ time=\d\.\d{3} ms

--- 127\.0\.0\.1 ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time \d+ms
` + rtt + "\n$", stderr: ""},
		// Upstream's header has a space before "(::1)" since 20240117; Debian's 20221126 has
		// none, and Debian is the reference.
		{args: []string{"-c1", "::1"}, stdout: `^PING ::1\(::1\) 56 data bytes
64 bytes from ::1: icmp_seq=1 ttl=\d+ time=\d\.\d{3} ms

--- ::1 ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time \d+ms
` + rtt + "\n$", stderr: ""},
		{args: []string{"-c1", "localhost"}, stdout: `0% packet loss`, stderr: ""},
		{args: []string{"-c1", "-4", "localhost"}, stdout: `^PING localhost \(127\.0\.0\.1\) 56\(84\) bytes of data\.
64 bytes from localhost \(127\.0\.0\.1\): icmp_seq=1 ttl=\d+ time=\d\.\d{3} ms

--- localhost ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time \d+ms
` + rtt + "\n$", stderr: ""},
		{args: []string{"-c1", "-i0.001", "127.0.0.1"}, stdout: `^PING 127\.0\.0\.1 \(127\.0\.0\.1\) 56\(84\) bytes of data\.
64 bytes from 127\.0\.0\.1: icmp_seq=1 ttl=\d+ time=\d\.\d{3} ms

--- 127\.0\.0\.1 ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time \d+ms
` + rtt + "\n$", stderr: ""},
		{args: []string{}, code: 2, stderr: "PROG: usage error: Destination address required\n",
			debian: "Debian's 20221126 exits 1 here (upstream 2)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			real, ours := l.both(t, "client", "ping", tt.args)
			for _, r := range []struct {
				who, prog string
				r         result
			}{{"ping", "ping", real}, {"pinglab", "pinglab ping", ours}} {
				if r.who == "ping" && tt.debian != "" {
					t.Logf("ping %v: not checked: %s (exit %d)", tt.args, tt.debian, r.r.code)
					continue
				}
				if r.r.code != tt.code {
					t.Errorf("%s %v: exit %d, want %d", r.who, tt.args, r.r.code, tt.code)
				}
				if tt.stdout != "" && !regexp.MustCompile(tt.stdout).MatchString(r.r.stdout) {
					t.Errorf("%s %v: stdout does not match %q:\n%s", r.who, tt.args, tt.stdout, r.r.stdout)
				}
				if want := strings.ReplaceAll(tt.stderr, "PROG", r.prog); tt.stderr != "-" && r.r.stderr != want {
					t.Errorf("%s %v: stderr %q, want %q", r.who, tt.args, r.r.stderr, want)
				}
			}
		})
	}
}

func traceCases() []parityCase {
	reject := func(with string) func(t *testing.T, l *parityLab) {
		return func(t *testing.T, l *parityLab) {
			l.nft(t, "server", "chain in {\ntype filter hook input priority 0; policy accept;\n"+with+"\n}")
		}
	}
	w := func(args ...string) []string { return append([]string{"-w", "1"}, args...) }
	return []parityCase{
		{name: "udp", args: w("-n", labServer4)},
		{name: "udp-v6", args: w("-n", labServer6)},
		{name: "icmp", args: w("-n", "-I", labServer4)},
		{name: "icmp-v6", args: w("-n", "-I", labServer6)},
		{name: "tcp", args: w("-n", "-T", labServer4)},
		{name: "udp-port", args: w("-n", "-U", labServer4)},
		{name: "names", args: w(labServer4)},
		{name: "names-target", args: w("server.lab")},
		{name: "one-query", args: w("-n", "-q", "1", labServer4)},
		{name: "first-hop", args: w("-n", "-f", "2", labServer4)},
		{name: "max-hops", args: w("-n", "-m", "1", labServer4)},
		{name: "port", args: w("-n", "-p", "40000", labServer4)},
		{name: "length", args: w("-n", labServer4, "100")},
		{name: "source", args: w("-n", "-s", labClient4, labServer4)},
		{name: "interface", args: w("-n", "-i", "eth0", labServer4)},
		{name: "tos", args: w("-n", "-t", "16", labServer4)},
		{name: "host-unreachable", args: w("-n", labServer4), setup: reject("udp dport >= 33434 reject with icmp type host-unreachable")},
		{name: "net-unreachable", args: w("-n", labServer4), setup: reject("udp dport >= 33434 reject with icmp type net-unreachable")},
		{name: "prot-unreachable", args: w("-n", labServer4), setup: reject("udp dport >= 33434 reject with icmp type prot-unreachable")},
		{name: "admin-prohibited", args: w("-n", labServer4), setup: reject("udp dport >= 33434 reject with icmp type admin-prohibited")},
		{name: "host-unreachable-v6", args: w("-n", labServer6), setup: reject("udp dport >= 33434 reject with icmpv6 type addr-unreachable")},
		{name: "admin-prohibited-v6", args: w("-n", labServer6), setup: reject("udp dport >= 33434 reject with icmpv6 type admin-prohibited")},
		{name: "silent", args: w("-n", "-m", "6", labServer4), setup: reject("udp dport >= 33434 drop")},
		// A host that never answers, 30 hops: both send 16 probes at a time, so the trace
		// takes a few waits, not one per hop.
		{name: "silent-30-hops", args: w("-n", "-m", "30", labServer4), setup: reject("udp dport >= 33434 drop"), serial: true, maxTime: 2},
		{name: "silent-30-hops-icmp", args: w("-n", "-I", "-m", "30", labServer4), setup: reject("icmp type echo-request drop"), serial: true, maxTime: 2},
		{name: "tcp-closed-port", args: w("-n", "-T", "-p", "9", labServer4)},
		{name: "tcp-v6", args: w("-n", "-T", labServer6)},
		{name: "udp-port-v6", args: w("-n", "-U", labServer6)},
		{name: "sim-1", args: w("-n", "-N", "1", labServer4)},
		{name: "sendwait", args: w("-n", "-z", "20", labServer4)},
		{name: "dont-fragment", args: w("-n", "-F", labServer4, "1400")},
		{name: "wait-factors", args: []string{"-n", "-w", "2,1,1", labServer4}},
	}
}

// testClientSocketFlags checks ping's -t, -I and -Q on the UDP and TCP clients in the lab: the
// router's Time to live exceeded with -t 1, the server's port unreachable or refusal through
// -I and -Q, and a device that does not exist refused before anything is sent.
func testClientSocketFlags(t *testing.T, l *parityLab) {
	tests := []struct {
		args []string
		code int
		want string // a line of the output
	}{
		{[]string{"udp", "ping", "-c", "1", "-t", "1", labServer4 + ":9"}, 1, "From 10.77.1.254 udp_seq=1 Time to live exceeded"},
		{[]string{"udp", "ping", "-c", "1", "-t", "1", "[" + labServer6 + "]:9"}, 1, "From fd00:77:1::fe udp_seq=1 Time exceeded: Hop limit"},
		{[]string{"udp", "ping", "-c", "1", "-I", "eth0", "-Q", "0x10", labServer4 + ":9"}, 1, "From 10.77.2.2 udp_seq=1 Destination Port Unreachable"},
		{[]string{"udp", "ping", "-c", "1", "-I", labClient4, labServer4 + ":9"}, 1, "From 10.77.2.2 udp_seq=1 Destination Port Unreachable"},
		{[]string{"udp", "ping", "-c", "1", "-I", "nosuch0", labServer4 + ":9"}, 2, ""},
		{[]string{"tcp", "ping", "-c", "1", "-I", "eth0", "-Q", "0x10", "-t", "9", labServer4 + ":9"}, 1, ""},
		{[]string{"tcp", "ping", "-c", "1", "-I", "nosuch0", labServer4 + ":9"}, 2, ""},
	}
	for _, tt := range tests {
		r := l.pinglab(t, "client", tt.args)
		if r.code != tt.code || (tt.want != "" && !strings.Contains(r.stdout, tt.want+"\n")) {
			t.Errorf("pinglab %v: exit %d (want %d), want a line %q:\n%s%s", tt.args, r.code, tt.code, tt.want, r.stdout, r.stderr)
		}
	}
}
