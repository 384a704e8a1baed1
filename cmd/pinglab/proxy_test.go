package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
	"github.com/pinglab/pinglab/tcpping"
	"github.com/pinglab/pinglab/udpping"
)

// freePort returns a loopback port that was free a moment ago, for a command that must be
// given its address.
func freePort(t *testing.T, network string) string {
	t.Helper()
	var addr string
	if network == "udp" {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().String()
		pc.Close()
	} else {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	return addr
}

// startProxyCmd runs "pinglab proxy --listen ADDR args..." until stop, which ends it as Ctrl-C
// does and returns what it printed.
func startProxyCmd(t *testing.T, proto string, args ...string) (addr string, stop func() string) {
	t.Helper()
	addr = freePort(t, proto)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"pinglab", "proxy", "--proto", proto, "--listen", addr}, args...), &out, &errOut)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "PROXY ") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("proxy exited %d: %s%s", code, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("proxy did not start: %s%s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("proxy exit %d, want 0; stderr %s", code, errOut.String())
			}
		}
		return out.String()
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

var (
	dupRE      = regexp.MustCompile(`\+(\d+) duplicates`)
	proxySumRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received,(?: \+\d+ duplicates,)?(?: \+(\d+) errors,)?(?: \+\d+ late,)? ([0-9.]+)% packet loss`)
)

// proxySummary reads a client's summary line, whatever counts of duplicates, errors and late
// replies it has.
func proxySummary(t *testing.T, out string) (tx, rx, errs int, loss float64) {
	t.Helper()
	m := proxySumRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", out)
	}
	tx, _ = strconv.Atoi(m[1])
	rx, _ = strconv.Atoi(m[2])
	errs, _ = strconv.Atoi(m[3])
	loss, _ = strconv.ParseFloat(m[4], 64)
	return tx, rx, errs, loss
}

func floats(t *testing.T, re *regexp.Regexp, out string) []float64 {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, out)
	}
	var f []float64
	for _, s := range m[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		f = append(f, v)
	}
	return f
}

// pingThrough runs pinglab's UDP client through a proxy: 2000 probes a millisecond apart,
// each with 300 ms to come back, so that the run takes about 2.5 s.
func pingThrough(t *testing.T, proto, addr string, extra ...string) string {
	t.Helper()
	args := append([]string{proto, "ping", addr, "-c", "2000", "-i", "1ms", "-W", "300ms", "-q"}, extra...)
	out, errOut, code := runCmd(t, context.Background(), args...)
	if code > 1 {
		t.Fatalf("exit %d; stderr: %s\n%s", code, errOut, out)
	}
	return out
}

// TestProxyLoss: --up-loss 20% loses 20 ± 3% of round trips, --loss 20% (each way) 36 ± 3%,
// as two netems, one on each side of the link, would; the proxy's table agrees with the
// client.
func TestProxyLoss(t *testing.T) {
	for _, tt := range []struct {
		flags []string
		want  float64
	}{
		{[]string{"--up-loss", "20%"}, 20},
		{[]string{"--down-loss", "20%"}, 20},
		{[]string{"--loss", "20%"}, 36},
		{[]string{"--loss", "0.2", "--down-loss", "0"}, 20},
	} {
		t.Run(strings.Join(tt.flags, " "), func(t *testing.T) {
			s := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"})
			addr, stop := startProxyCmd(t, "udp", append([]string{"--to", s.Addr().String(), "--seed", "16"}, tt.flags...)...)
			out := pingThrough(t, "udp", addr)
			tx, rx, _, loss := proxySummary(t, out)
			t.Logf("%d transmitted, %d received, %.1f%% loss", tx, rx, loss)
			if tx != 2000 || loss < tt.want-3 || loss > tt.want+3 {
				t.Errorf("%d transmitted, %g%% loss; want 2000 and %g ± 3%%:\n%s", tx, loss, tt.want, out)
			}
			table := stop()
			// The total's down row: what was forwarded to the client is what it received.
			m := regexp.MustCompile(`(?m)^\s+down\s+(\d+)\s+(\d+)`).FindAllStringSubmatch(table, -1)
			if len(m) == 0 {
				t.Fatalf("no down rows in:\n%s", table)
			}
			if fwd, _ := strconv.Atoi(m[len(m)-1][2]); fwd != rx {
				t.Errorf("proxy forwarded %d replies, the client received %d:\n%s", fwd, rx, table)
			}
		})
	}
}

// csvRTTs reads the RTTs (ms) of a client's --csv file, sorted.
func csvRTTs(t *testing.T, file string) []float64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rtts []float64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Split(line, ",")
		if len(f) > 3 && f[2] == "reply" {
			v, _ := strconv.ParseFloat(f[3], 64)
			rtts = append(rtts, v)
		}
	}
	sort.Float64s(rtts)
	return rtts
}

func quantile(sorted []float64, q float64) float64 {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// startProcess runs pinglab (the test binary as pinglab) as a process of its own until the test
// ends, and waits for its first line. A process of its own has its own runtime, as a user's
// server, proxy and client have, so that one's garbage collection or scheduling does not
// delay the others.
func startProcess(t *testing.T, args ...string) *lockedBuffer {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asPinglabEnv+"=1")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "\n"); {
		select {
		case <-done:
			t.Fatalf("pinglab %s ended at once: %s", strings.Join(args, " "), out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pinglab %s printed nothing", strings.Join(args, " "))
		}
	}
	return out
}

// pingAll pings the targets at once, each from a client process of its own with the same
// arguments, and returns each one's RTTs (ms, sorted).
func pingAll(t *testing.T, proto string, targets []string, args ...string) [][]float64 {
	t.Helper()
	dir := t.TempDir()
	out := make([][]float64, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], append([]string{proto, "ping", target, "-q", "--csv", filepath.Join(dir, fmt.Sprintf("%d.csv", i))}, args...)...)
			cmd.Env = append(os.Environ(), asPinglabEnv+"=1")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s ping %s: %v\n%s", proto, target, err, b)
			}
		}()
	}
	wg.Wait()
	for i := range targets {
		out[i] = csvRTTs(t, filepath.Join(dir, fmt.Sprintf("%d.csv", i)))
	}
	return out
}

func quantiles(r []float64) string {
	if len(r) == 0 {
		return "no replies"
	}
	return fmt.Sprintf("min %.2f p10 %.2f p50 %.2f p90 %.2f max %.2f ms", r[0], quantile(r, 0.1), quantile(r, 0.5), quantile(r, 0.9), r[len(r)-1])
}

// TestProxyDelay: --up-delay 50ms --up-jitter 10ms: no RTT below 40 ms, and the distribution
// of a uniform 40-60 ms (p10 42, p50 50, p90 58). Server, proxy and clients run as processes of
// their own, as a user's would. What a loaded machine adds on top is measured at the same time
// by a witness: pinglab's UDP server holding its replies back 50 ms ± 10 ms itself, pinged
// alongside. Each of the proxy's quantiles must be within 3 ms of the ideal one, plus one and
// a half times what the machine added to the witness's (nothing on a quiet machine). A run
// that misses is tried again, up to 5 runs.
func TestProxyDelay(t *testing.T) {
	srv, witness, addr := freePort(t, "udp"), freePort(t, "udp"), freePort(t, "udp")
	startProcess(t, "udp", "server", "-q", "-l", srv)
	startProcess(t, "udp", "server", "-q", "-l", witness, "--delay", "50ms", "--jitter", "10ms", "--seed", "5")
	startProcess(t, "proxy", "-l", addr, "--to", srv, "--up-delay", "50ms", "--up-jitter", "10ms", "--seed", "5")
	var misses []string
	for run := 1; run <= 5; run++ {
		r := pingAll(t, "udp", []string{addr, witness}, "-c", "2000", "-i", "1ms", "-W", "300ms")
		px, wi := r[0], r[1]
		t.Logf("run %d: proxy   %s", run, quantiles(px))
		t.Logf("run %d: witness %s", run, quantiles(wi))
		if len(px) != 2000 || len(wi) != 2000 {
			t.Fatalf("%d replies through the proxy, %d from the witness; want 2000 each", len(px), len(wi))
		}
		if px[0] < 40 {
			t.Fatalf("min RTT %.3f ms, below the 40 ms the delay allows", px[0])
		}
		misses = misses[:0]
		for _, q := range []struct{ q, ideal float64 }{{0.1, 42}, {0.5, 50}, {0.9, 58}} {
			load := max(0, quantile(wi, q.q)-q.ideal)
			if got := quantile(px, q.q); got < q.ideal-3 || got > q.ideal+3+1.5*load {
				misses = append(misses, fmt.Sprintf("quantile %g: %.2f ms, want %g - %g (the witness's %.2f)", q.q, got, q.ideal-3, q.ideal+3+1.5*load, quantile(wi, q.q)))
			}
		}
		if len(misses) == 0 {
			return
		}
		t.Logf("run %d: %s", run, strings.Join(misses, "; "))
	}
	t.Errorf("in 5 runs, none within bounds; the last: %s", strings.Join(misses, "; "))
}

// TestProxyTCPDelay: --delay 25ms each way on a TCP stream: no ping back before 50 ms, every
// ping answered (the stream keeps its order), the median within 3 ms of 50 plus one and a
// half times what load added to a witness's (pinglab's TCP server holding replies 50 ms,
// pinged alongside). Up to 5 runs.
func TestProxyTCPDelay(t *testing.T) {
	srv, witness, addr := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	startProcess(t, "tcp", "server", "-q", "-l", srv)
	startProcess(t, "tcp", "server", "-q", "-l", witness, "--delay", "50ms")
	startProcess(t, "proxy", "--proto", "tcp", "-l", addr, "--to", srv, "--delay", "25ms")
	for run := 1; ; run++ {
		r := pingAll(t, "tcp", []string{addr, witness}, "-c", "200", "-i", "5ms", "-W", "1s")
		px, wi := r[0], r[1]
		t.Logf("run %d: proxy   %s", run, quantiles(px))
		t.Logf("run %d: witness %s", run, quantiles(wi))
		if len(px) != 200 || len(wi) != 200 || px[0] < 50 {
			t.Fatalf("%d replies, the first after %.2f ms, %d from the witness; want 200, none before 50 ms", len(px), px[0], len(wi))
		}
		load := max(0, quantile(wi, 0.5)-50)
		got := quantile(px, 0.5)
		if got <= 53+1.5*load {
			return
		}
		t.Logf("run %d: median %.2f ms, want at most %.2f", run, got, 53+1.5*load)
		if run == 5 {
			t.Errorf("in 5 runs the median was never within 3 ms of 50 ms plus what load added")
			return
		}
	}
}

// TestProxyDuplicates: --up-duplicate 10%: pinglab's client counts the duplicates (DUP!), as
// many as the proxy says it made.
func TestProxyDuplicates(t *testing.T) {
	s := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"})
	addr, stop := startProxyCmd(t, "udp", "--to", s.Addr().String(), "--up-duplicate", "10%", "--seed", "3")
	out := pingThrough(t, "udp", addr)
	dups := int(floats(t, dupRE, out)[0])
	if tx, rx, _, _ := proxySummary(t, out); tx != 2000 || rx != 2000 || dups < 140 || dups > 260 {
		t.Errorf("%d transmitted, %d received, +%d duplicates; want 2000, 2000 and 200 ± 60:\n%s", tx, rx, dups, out)
	}
	table := stop()
	m := regexp.MustCompile(`(?m)^total\s+up\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)`).FindStringSubmatch(table)
	if m == nil {
		t.Fatalf("no total row in:\n%s", table)
	}
	if made, _ := strconv.Atoi(m[3]); made != dups {
		t.Errorf("proxy made %d duplicates, the client counted %d:\n%s", made, dups, table)
	}
}

// TestProxyTCPReset: --up-reset 20% with a connection per ping: 20 ± 3% of 2000 pings fail,
// each as a reset the client reports. Stop-and-wait (-i 0), so that a loaded machine cannot pile up
// connections in flight and turn resets into timeouts.
func TestProxyTCPReset(t *testing.T) {
	srv := startTCPServer(t, tcpping.ServerConfig{Addr: "127.0.0.1:0"})
	addr, stop := startProxyCmd(t, "tcp", "--to", srv.Addr().String(), "--up-reset", "20%", "--seed", "9")
	out, errOut, code := runCmd(t, context.Background(), "tcp", "ping", addr, "-c", "2000", "-i", "0", "-W", "1s", "--connect", "per-ping", "-q")
	if code > 1 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	tx, rx, errs, loss := proxySummary(t, out)
	t.Logf("%d transmitted, %d received, %d errors, %.1f%% loss", tx, rx, errs, loss)
	if tx != 2000 || loss < 17 || loss > 23 || errs+rx != tx {
		t.Errorf("%d transmitted, %d received, +%d errors, %g%% loss; want 20 ± 3%% lost, each an error:\n%s", tx, rx, errs, loss, out)
	}
	table := stop()
	if !strings.Contains(table, "resets") {
		t.Errorf("no resets column in:\n%s", table)
	}
}

func python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		testutil.SkipOrFail(t, "python3 is not installed (apt-get install python3)")
	}
	return py
}

// startPython runs one of the handout's programs in scripts/bench on port and waits for it.
func startPython(t *testing.T, script, addr string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(python(t), filepath.Join("..", "..", "scripts", "bench", script), port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	network := "udp"
	if strings.HasPrefix(script, "tcp") {
		network = "tcp"
	}
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial(network, addr)
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write([]byte("ping 0 x\n"))
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Close()
		if strings.HasPrefix(string(buf[:n]), "PING 0") {
			return
		}
	}
	t.Fatalf("%s did not answer on %s", script, addr)
}

// TestProxyPythonHandout: the handout's Python programs through the proxy see the loss they
// should: the UDP server behind --up-loss 20% loses 20 ± 3% of pinglab's 2000 pings and of
// the handout's Python client's 1000, and the TCP server behind --up-reset 20% fails 20 ± 3%
// of pinglab's 1000 TCP pings.
func TestProxyPythonHandout(t *testing.T) {
	udpAddr := freePort(t, "udp")
	startPython(t, "udp_server.py", udpAddr)
	addr, _ := startProxyCmd(t, "udp", "--to", udpAddr, "--up-loss", "20%", "--seed", "11")
	out := pingThrough(t, "udp", addr)
	if tx, _, _, loss := proxySummary(t, out); tx != 2000 || loss < 17 || loss > 23 {
		t.Errorf("pinglab through the proxy to the Python UDP server: %g%% loss, want 20 ± 3%%:\n%s", loss, out)
	}

	_, port, _ := net.SplitHostPort(addr)
	pyOut, err := exec.Command(python(t), filepath.Join("..", "..", "scripts", "bench", "udp_client.py"), "127.0.0.1", port, "1000", "0.05").CombinedOutput()
	if err != nil {
		t.Fatalf("udp_client.py: %v\n%s", err, pyOut)
	}
	m := regexp.MustCompile(`Packet loss rate: ([0-9.]+)%`).FindSubmatch(pyOut)
	if m == nil {
		t.Fatalf("no loss rate in:\n%s", pyOut)
	}
	lost := strings.Count(string(pyOut), " is lost")
	if loss, _ := strconv.ParseFloat(string(m[1]), 64); loss < 17 || loss > 23 || lost < 170 || lost > 230 {
		t.Errorf("the handout's Python client: %g%% loss, %d lost lines; want 20 ± 3%% of 1000", loss, lost)
	}

	tcpAddr := freePort(t, "tcp")
	startPython(t, "tcp_server.py", tcpAddr)
	taddr, _ := startProxyCmd(t, "tcp", "--to", tcpAddr, "--up-reset", "20%", "--seed", "12")
	// A thread per connection in Python: 1000 connections 3 ms apart, which it keeps up with.
	out, errOut, code := runCmd(t, context.Background(), "tcp", "ping", taddr, "-c", "1000", "-i", "3ms", "-W", "2s", "--connect", "per-ping", "-q")
	if code > 1 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	if tx, _, _, loss := proxySummary(t, out); tx != 1000 || loss < 17 || loss > 23 {
		t.Errorf("pinglab through the proxy to the Python TCP server: %g%% loss, want 20 ± 3%%:\n%s", loss, out)
	}
}

// TestProxyTable: the table on Ctrl-C has a row per client each way and the total.
func TestProxyTable(t *testing.T) {
	s := startUDPServer(t, udpping.ServerConfig{Addr: "[::1]:0"})
	addr, stop := startProxyCmd(t, "udp", "--to", s.Addr().String(), "--up-loss", "100%")
	for range 2 {
		if _, _, code := runCmd(t, context.Background(), "udp", "ping", addr, "-c", "3", "-i", "1ms", "-W", "50ms", "-q"); code != 1 {
			t.Errorf("exit %d, want 1 (all lost)", code)
		}
	}
	out := stop()
	for _, want := range []string{
		"PROXY udp " + addr + " -> " + s.Addr().String(),
		"  up   (client -> server): loss 100%",
		"  down (server -> client): nothing (passes unchanged)",
		"--- udp proxy statistics (datagrams) ---",
		"2 flows",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^total\s+up\s+6\s+0\s+0\s+6\s`).MatchString(out) {
		t.Errorf("total up row is not 6 received, 0 forwarded, 0 bytes, 6 lost:\n%s", out)
	}
	if n := len(regexp.MustCompile(`(?m)^127\.0\.0\.1:\d+\s+up`).FindAllString(out, -1)); n != 2 {
		t.Errorf("%d client rows, want 2:\n%s", n, out)
	}
}

// TestProxyBadInput: every mistake is one line on stderr naming it, exit 2, nothing printed
// and nothing opened.
func TestProxyBadInput(t *testing.T) {
	to := "127.0.0.1:9"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", to}, "--listen ADDR and --to HOST:PORT"},
		{[]string{"-l", "127.0.0.1:0"}, "--listen ADDR and --to HOST:PORT"},
		{[]string{"-l", "127.0.0.1", "--to", to}, `--listen "127.0.0.1"`},
		{[]string{"-l", "127.0.0.1:0", "--to", "127.0.0.1:99999"}, `--to "127.0.0.1:99999"`},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--loss", "120%"}, "--loss"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--up-loss", "x"}, "--up-loss"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--delay", "-5ms"}, "--delay"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--jitter", "5ms"}, "jitter needs a delay"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--distribution", "gauss", "--delay", "1ms", "--jitter", "1ms"}, "distribution must be"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--reorder", "10%"}, "reorder needs a delay"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--rate", "fast"}, "--rate"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--loss-burst", "1%,2%,3%,4%,5%"}, "--loss-burst"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--loss", "1%", "--loss-burst", "1%"}, "exclude each other"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--proto", "tcp", "--loss", "1%"}, "TCP stream"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--reset", "1%"}, "for TCP streams"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--proto", "sctp"}, `--proto "sctp"`},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--max-flows", "0"}, "--max-flows"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--max-size", "70000"}, "--max-size"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--idle", "0"}, "--idle"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "extra"}, `unexpected argument "extra"`},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--bogus"}, "bogus"},
		{[]string{"-l", "127.0.0.1:0", "--to", to, "--metrics", "nowhere"}, "--metrics"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := runCmd(t, context.Background(), append([]string{"proxy"}, tt.args...)...)
			if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, one line with %q", code, out, errOut, tt.want)
			}
		})
	}
	// A port in use is a setup error, one line too.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out, errOut, code := runCmd(t, context.Background(), "proxy", "-l", pc.LocalAddr().String(), "--to", to)
	if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "address already in use") {
		t.Errorf("port in use: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestProxyOneWay: with loss on each side, pinglab's client (--one-way, receipts from
// pinglab's server) tells the ways apart: 20 ± 3% lost outbound, 10 ± 3% of the rest inbound,
// and each exactly as many as the proxy's table says it dropped that way.
func TestProxyOneWay(t *testing.T) {
	s := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"})
	addr, stop := startProxyCmd(t, "udp", "--to", s.Addr().String(), "--up-loss", "20%", "--down-loss", "10%", "--seed", "21")
	out := pingThrough(t, "udp", addr, "--one-way")
	m := regexp.MustCompile(`lost: (\d+) outbound, (\d+) inbound`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no one-way loss line in:\n%s", out)
	}
	outbound, _ := strconv.Atoi(m[1])
	inbound, _ := strconv.Atoi(m[2])
	t.Logf("lost %d outbound, %d inbound of 2000", outbound, inbound)
	if o := float64(outbound) / 20; o < 17 || o > 23 {
		t.Errorf("%.1f%% lost outbound, want 20 ± 3%%:\n%s", o, out)
	}
	if i := 100 * float64(inbound) / float64(2000-outbound); i < 7 || i > 13 {
		t.Errorf("%.1f%% of the pings that arrived lost inbound, want 10 ± 3%%:\n%s", i, out)
	}
	table := stop()
	row := func(dir string) int {
		m := regexp.MustCompile(`(?m)^(?:total)?\s+`+dir+`\s+\d+\s+\d+\s+\d+\s+(\d+)`).FindAllStringSubmatch(table, -1)
		if len(m) == 0 {
			t.Fatalf("no %s rows in:\n%s", dir, table)
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n
	}
	if up, down := row("up"), row("down"); up != outbound || down != inbound {
		t.Errorf("proxy lost %d up and %d down, the client counted %d outbound and %d inbound:\n%s", up, down, outbound, inbound, table)
	}
}

// TestProxyMetrics: --metrics serves the table's counters live, by client address and
// direction.
func TestProxyMetrics(t *testing.T) {
	s := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"})
	maddr := freePort(t, "tcp")
	addr, stop := startProxyCmd(t, "udp", "--to", s.Addr().String(), "--up-loss", "50%", "--seed", "2", "--metrics", maddr)
	out, _, _ := runCmd(t, context.Background(), "udp", "ping", addr, "-c", "40", "-i", "1ms", "-W", "100ms", "-q")
	_, rx, _, _ := proxySummary(t, out)
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pinglab_proxy_packets_received_total{client="127.0.0.1",dir="up"} 40`,
		fmt.Sprintf(`pinglab_proxy_packets_lost_total{client="127.0.0.1",dir="up"} %d`, 40-rx),
		fmt.Sprintf(`pinglab_proxy_packets_forwarded_total{client="127.0.0.1",dir="down"} %d`, rx),
		`pinglab_proxy_flows_open 1`,
		`pinglab_proxy_flows_refused_total 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if table := stop(); !strings.Contains(table, "metrics on http://"+maddr+"/metrics") {
		t.Errorf("no metrics line in:\n%s", table)
	}
}
