package lossy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
	"golang.org/x/sys/unix"
)

// The netem suite: each impairment is put on the server's eth0, so it acts on the replies
// only (one direction of the veth between the two namespaces), and the client measures it.
// These tests need a kernel with netem; this machine's has none, so they skip here and run in
// internal/vmtest's VM on Debian's kernel, where a skip is a failure.

// netemLab is a two-host lab with pinglab's UDP echo server on the server, the neighbours
// resolved, and netem known to work.
func netemLab(t *testing.T) (client, server LabHost, dst netip.AddrPort) {
	t.Helper()
	l := testLab(t, 2)
	client, server = host(t, l, HostClient), host(t, l, HostServer)
	if err := netemState(t, server); err != nil {
		testutil.SkipForKernel(t, "this kernel has no netem: %v", err)
	}
	udpServer(t, server, 12000)
	dst = netip.AddrPortFrom(server.Addr(false), 12000)
	resolveNeighbours(t, client, dst)
	return client, server, dst
}

// tcQdisc is the outside witness for netem: what tc shows at the root of dev in the namespace.
func tcQdisc(t *testing.T, ns, dev string) string {
	t.Helper()
	out, err := runIn(t, ns, "tc", "qdisc", "show", "dev", dev)
	if err != nil {
		t.Fatalf("tc qdisc show dev %s: %v: %s", dev, err, out)
	}
	return strings.TrimSpace(out)
}

// applyNetemSeen applies n on the server and checks that tc shows what was asked.
func applyNetemSeen(t *testing.T, server LabHost, n Netem, tcWants ...string) {
	t.Helper()
	if err := ApplyNetem(context.Background(), Options{Netns: server.Netns}, n); err != nil {
		t.Fatalf("ApplyNetem %+v: %v", n, err)
	}
	t.Cleanup(func() { _ = Clear(context.Background(), Options{Netns: server.Netns}) })
	got := tcQdisc(t, server.Netns, n.Dev)
	for _, w := range append([]string{"qdisc netem 7067: root"}, tcWants...) {
		if !strings.Contains(got, w) {
			t.Errorf("tc qdisc show dev %s: %q lacks %q", n.Dev, got, w)
		}
	}
	t.Logf("tc: %s", got)
}

// replies splits a run's events into the replies' round trips (by sequence) and counts of
// the rest.
func replies(events []probe.Event) (rtt map[int]time.Duration, counts map[probe.EventType]int) {
	rtt, counts = map[int]time.Duration{}, map[probe.EventType]int{}
	for _, e := range events {
		counts[e.Type]++
		if e.Type == probe.EventReply {
			rtt[e.Seq] = e.RTT
		}
	}
	return rtt, counts
}

// quantile returns the q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func sortedRTTs(rtt map[int]time.Duration) []time.Duration {
	var d []time.Duration
	for _, v := range rtt {
		d = append(d, v)
	}
	slices.Sort(d)
	return d
}

const suiteProbes = 2000

// measure runs count UDP probes from the client and returns the events of a clean run: one in
// which nothing was lost but to the impairment under test. A VM whose CPU is starved (TCG on a
// busy machine) can fall behind 1000 probes a second; a socket then overflows, which the UDP
// counters of both namespaces show, or a reply comes after its timeout. Such a run is not a
// measurement of netem: it runs again at half the rate, up to three times.
func measure(t *testing.T, client, server LabHost, dst netip.AddrPort, count int) []probe.Event {
	t.Helper()
	return measureEvery(t, client, server, dst, count, time.Millisecond)
}

func measureEvery(t *testing.T, client, server LabHost, dst netip.AddrPort, count int, interval time.Duration) []probe.Event {
	t.Helper()
	for attempt := 1; ; attempt++ {
		before := udpCounter(t, client, "RcvbufErrors") + udpCounter(t, server, "RcvbufErrors")
		events := udpEvents(t, client, dst, probe.Options{Count: count, Interval: interval, Timeout: 3 * time.Second})
		overflows := udpCounter(t, client, "RcvbufErrors") + udpCounter(t, server, "RcvbufErrors") - before
		late := 0
		for _, e := range events {
			if e.Type == probe.EventLate {
				late++
			}
		}
		if overflows == 0 && late == 0 {
			return events
		}
		if attempt == 3 {
			t.Fatalf("%d probes every %v: %d socket overflows and %d late replies, the machine cannot keep up", count, interval, overflows, late)
		}
		t.Logf("%d probes every %v: %d socket overflows and %d late replies, not netem's doing; again at half the rate", count, interval, overflows, late)
		interval *= 2
	}
}

func TestNetemLossCorrelation(t *testing.T) {
	client, server, dst := netemLab(t)
	const loss, corr = 0.2, 0.5
	applyNetemSeen(t, server, Netem{Dev: "eth0", Loss: loss, LossCorr: corr}, "loss 20% 50%")
	rtt, counts := replies(measure(t, client, server, dst, suiteProbes))
	lost := make([]bool, suiteProbes)
	for seq := 1; seq <= suiteProbes; seq++ {
		_, ok := rtt[seq]
		lost[seq-1] = !ok
	}
	rate, after := lossFigures(lost)
	// The kernel's correlated generator (sch_netem's get_crandom: each draw is rho times the
	// last plus 1-rho times a fresh one, lost when below the loss) does not keep the loss at
	// what was asked; what it gives is its own, so the test runs the same model to know what
	// to expect, over as many runs of this length as make a band.
	lo, hi, loAfter, hiAfter := correlatedBand(loss, corr, suiteProbes, 400)
	t.Logf("netem loss 20%% correlation 50%%: %.2f%% lost (model: %.2f to %.2f%%), P(lost | last lost) = %.2f (model: %.2f to %.2f) (events %v)",
		100*rate, 100*lo, 100*hi, after, loAfter, hiAfter, counts)
	if rate < lo || rate > hi {
		t.Errorf("loss %.2f%%, outside the model's %.2f to %.2f%%", 100*rate, 100*lo, 100*hi)
	}
	if after < loAfter || after > hiAfter {
		t.Errorf("P(lost | last lost) %.3f, outside the model's %.3f to %.3f", after, loAfter, hiAfter)
	}
	// Uncorrelated 20% loss would be lost 20% of the time after a loss too: the bursts are
	// what the correlation asked for.
	if after < 2*rate {
		t.Errorf("P(lost | last lost) %.3f is not above twice the loss %.3f: no bursts", after, rate)
	}
}

// lossFigures returns the share lost and the share lost right after a loss.
func lossFigures(lost []bool) (rate, afterLoss float64) {
	var n, pairs, both int
	for i, l := range lost {
		if l {
			n++
		}
		if i > 0 && lost[i-1] {
			pairs++
			if l {
				both++
			}
		}
	}
	if pairs > 0 {
		afterLoss = float64(both) / float64(pairs)
	}
	return float64(n) / float64(len(lost)), afterLoss
}

// correlatedBand runs sch_netem's correlated loss model (kernel 6.1) for runs of n packets and
// returns the range of the loss and of P(lost | last lost) that holds all but the extreme
// 0.5% of runs on each side, widened by a tenth.
func correlatedBand(loss, corr float64, n, runs int) (lo, hi, loAfter, hiAfter float64) {
	r := rand.New(rand.NewPCG(1, 2))
	p := uint64(math.Round(loss * math.MaxUint32))
	rho := uint64(math.Round(corr*math.MaxUint32)) + 1
	var rates, afters []float64
	var last uint64
	for range runs {
		lost := make([]bool, n)
		for i := range lost {
			v := uint64(r.Uint32())
			last = (v*((1<<32)-rho) + last*rho) >> 32
			lost[i] = p >= last
		}
		rate, after := lossFigures(lost)
		rates, afters = append(rates, rate), append(afters, after)
	}
	slices.Sort(rates)
	slices.Sort(afters)
	k := runs / 200
	widen := func(a, b float64) (float64, float64) { w := (b - a) / 10; return a - w, b + w }
	lo, hi = widen(rates[k], rates[runs-1-k])
	loAfter, hiAfter = widen(afters[k], afters[runs-1-k])
	return lo, hi, loAfter, hiAfter
}

func TestNetemDelayJitter(t *testing.T) {
	client, server, dst := netemLab(t)
	// Round trips are timed, so the probes go at a pace a slow VM keeps without adding its own
	// delay (TCG on a busy machine adds tens of milliseconds at 1000 probes a second), and the
	// delay is long against what it adds even so.
	const n, every = 500, 5 * time.Millisecond
	base := quantile(sortedRTTs(first(replies(measureEvery(t, client, server, dst, 100, every)))), 0)
	const delay, jitter = 100 * time.Millisecond, 20 * time.Millisecond
	applyNetemSeen(t, server, Netem{Dev: "eth0", Delay: delay, Jitter: jitter}, "delay 100ms  20ms")
	retry(t, func() []string {
		rtt, counts := replies(measureEvery(t, client, server, dst, n, every))
		d := sortedRTTs(rtt)
		if len(d) != n {
			return []string{fmt.Sprintf("%d of %d replies with delay only (events %v)", len(d), n, counts)}
		}
		for i := range d {
			d[i] -= base
		}
		// Without a distribution table netem's jitter is uniform: delay ± jitter. So nothing
		// comes before delay - jitter, and the quartiles are half a jitter apart either side
		// of the median (of 500 draws within about 1.5 ms). A starved VM's timers fire late,
		// which moves every quantile up alike but the floor: the floor pins the delay, the
		// spread the jitter, and the median may sit up to half a jitter high.
		t.Logf("netem delay 100ms jitter 20ms: RTT less the fastest without netem (%v): fastest %v, p1 %v, q1 %v, median %v, q3 %v, p99 %v over %d replies",
			base, d[0], quantile(d, 0.01), quantile(d, 0.25), quantile(d, 0.5), quantile(d, 0.75), quantile(d, 0.99), len(d))
		q1, med, q3 := quantile(d, 0.25), quantile(d, 0.5), quantile(d, 0.75)
		var bad []string
		for _, c := range []struct {
			what     string
			got      time.Duration
			min, max time.Duration
		}{
			{"fastest", d[0], delay - jitter - time.Millisecond, delay - jitter + 3*time.Millisecond},
			{"median", med, delay - 2*time.Millisecond, delay + jitter/2},
			{"median - first quartile", med - q1, jitter/2 - 3*time.Millisecond, jitter/2 + 3*time.Millisecond},
			{"third quartile - median", q3 - med, jitter/2 - 3*time.Millisecond, jitter/2 + 3*time.Millisecond},
		} {
			if c.got < c.min || c.got > c.max {
				bad = append(bad, fmt.Sprintf("%s %v, want %v to %v", c.what, c.got, c.min, c.max))
			}
		}
		return bad
	})
}

// retry runs a measurement up to three times and fails the test with the last one's faults if
// none was right. A VM short of CPU only ever adds delay and takes throughput away, so a
// measurement it spoiled is taken again; a wrong qdisc is wrong every time.
func retry(t *testing.T, try func() []string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		bad := try()
		if len(bad) == 0 {
			return
		}
		if attempt == 3 {
			for _, b := range bad {
				t.Error(b)
			}
			return
		}
		t.Logf("attempt %d: %s; measuring again", attempt, strings.Join(bad, "; "))
	}
}

func first[A, B any](a A, _ B) A { return a }

func TestNetemDuplicate(t *testing.T) {
	client, server, dst := netemLab(t)
	applyNetemSeen(t, server, Netem{Dev: "eth0", Duplicate: 0.1}, "duplicate 10%")
	_, counts := replies(measure(t, client, server, dst, suiteProbes))
	// 10% of 2000 is 200 with a standard deviation of 13.4.
	dup := counts[probe.EventDuplicate]
	t.Logf("netem duplicate 10%%: %d DUP! of %d probes (%.2f%%), %d replies", dup, suiteProbes, 100*float64(dup)/suiteProbes, counts[probe.EventReply])
	if dup < 160 || dup > 240 {
		t.Errorf("%d duplicates, want 160 to 240 (events %v)", dup, counts)
	}
	if counts[probe.EventReply] < suiteProbes*99/100 {
		t.Errorf("%d replies, want all %d but for a stray (events %v)", counts[probe.EventReply], suiteProbes, counts)
	}
}

func TestNetemReorder(t *testing.T) {
	client, server, dst := netemLab(t)
	const delay = 50 * time.Millisecond
	applyNetemSeen(t, server, Netem{Dev: "eth0", Delay: delay, Reorder: 0.25}, "delay 50ms", "reorder 25%", "gap 1")
	retry(t, func() []string {
		events := measure(t, client, server, dst, suiteProbes)
		rtt, counts := replies(events)
		// With a gap of 1, each packet leaves at once with the reorder probability, ahead of
		// the delayed ones queued before it; the others wait the delay.
		var fast int
		for _, d := range rtt {
			if d < delay/2 {
				fast++
			}
		}
		// A reply is reordered when it arrives after one with a higher sequence.
		var arrivals []probe.Event
		for _, e := range events {
			if e.Type == probe.EventReply {
				arrivals = append(arrivals, e)
			}
		}
		slices.SortStableFunc(arrivals, func(a, b probe.Event) int { return a.At.Compare(b.At) })
		var reordered, highest int
		for _, e := range arrivals {
			if e.Seq < highest {
				reordered++
			}
			highest = max(highest, e.Seq)
		}
		share := float64(fast) / float64(len(rtt))
		t.Logf("netem delay 50ms reorder 25%%: %d of %d replies (%.2f%%) sent at once, %d arrived after a later probe's reply (events %v)",
			fast, len(rtt), 100*share, reordered, counts)
		var bad []string
		if len(rtt) < suiteProbes*99/100 {
			bad = append(bad, fmt.Sprintf("%d replies of %d", len(rtt), suiteProbes))
		}
		if share < 0.215 || share > 0.285 {
			bad = append(bad, fmt.Sprintf("%.2f%% of replies undelayed, want 25 ± 3.5%%", 100*share))
		}
		if reordered < len(rtt)/2 {
			bad = append(bad, fmt.Sprintf("%d replies arrived out of order, want most of the delayed ones", reordered))
		}
		return bad
	})
}

// udpInCsumErrors reads the UDP checksum errors of the host's namespace.
func udpInCsumErrors(t *testing.T, h LabHost) int {
	t.Helper()
	return udpCounter(t, h, "InCsumErrors")
}

// udpCounter reads one of the UDP counters of /proc/net/snmp in the host's namespace.
func udpCounter(t *testing.T, h LabHost, name string) int {
	t.Helper()
	var n int
	inHost(t, h, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			if i := slices.Index(names, name); i > 0 && i < len(f) {
				_, err = fmt.Sscan(f[i], &n)
				return err
			}
		}
		return fmt.Errorf("no Udp %s in /proc/net/snmp", name)
	})
	return n
}

func TestNetemCorrupt(t *testing.T) {
	client, server, dst := netemLab(t)
	applyNetemSeen(t, server, Netem{Dev: "eth0", Corrupt: 0.1}, "corrupt 10%")
	before := udpInCsumErrors(t, client)
	rtt, counts := replies(measure(t, client, server, dst, suiteProbes))
	csum := udpInCsumErrors(t, client) - before
	lost := suiteProbes - len(rtt)
	// netem flips one bit of one byte of 10% of the frames. The checksums catch every flip but
	// those in the source MAC address (6 of the ~100 bytes), so about 9.4% of the replies
	// never reach the client, and the most of those die at its UDP checksum.
	t.Logf("netem corrupt 10%%: %d of %d replies lost (%.2f%%), %d UDP checksum errors at the client (events %v)",
		lost, suiteProbes, 100*float64(lost)/suiteProbes, csum, counts)
	if lost < suiteProbes*6/100 || lost > suiteProbes*13/100 {
		t.Errorf("%d replies lost to corruption, want 6 to 13%% of %d", lost, suiteProbes)
	}
	if csum < lost/3 {
		t.Errorf("%d UDP checksum errors for %d lost replies: corruption should show there, not plain loss", csum, lost)
	}
}

func TestNetemRate(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	if err := netemState(t, server); err != nil {
		testutil.SkipForKernel(t, "this kernel has no netem: %v", err)
	}
	var ln net.Listener
	inHost(t, server, func() (err error) { ln, err = net.Listen("tcp", "[::]:12002"); return err })
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	const rate = 250_000 // bytes a second: 2 Mbit/s
	applyNetemSeen(t, server, Netem{Dev: "eth0", Rate: rate}, "rate 2Mbit")
	var conn net.Conn
	inHost(t, client, func() (err error) {
		conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(server.Addr(false), 12002).String(), 5*time.Second)
		return err
	})
	defer conn.Close()
	// The first half second fills the queue; the next three are measured.
	read := func(d time.Duration) int64 {
		_ = conn.SetReadDeadline(time.Now().Add(d))
		n, err := io.Copy(io.Discard, conn)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
		return n
	}
	retry(t, func() []string {
		read(500 * time.Millisecond)
		start := time.Now()
		n := read(3 * time.Second)
		got := float64(n) / time.Since(start).Seconds()
		// netem counts whole frames; TCP's payload is 1448 of every 1514 bytes on the wire.
		t.Logf("netem rate 2Mbit over TCP: %d bytes in %v, %.0f bytes/s of payload (%.1f%% of the rate)",
			n, time.Since(start).Round(time.Millisecond), got, 100*got/rate)
		if got < 0.85*rate || got > 1.02*rate {
			return []string{fmt.Sprintf("throughput %.0f bytes/s, want 85 to 102%% of %d", got, rate)}
		}
		return nil
	})
}

// TestNetemForAndClear holds a netem scenario for a while, as --for does, and clears one: each
// time the kernel's default qdisc is back and the replies all come back.
func TestNetemForAndClear(t *testing.T) {
	client, server, dst := netemLab(t)
	ctx := context.Background()
	o := Options{Netns: server.Netns}
	wantGone := func(after string) {
		t.Helper()
		if st, err := Show(ctx, o); err != nil || !st.Empty() {
			t.Errorf("after %s: Show %+v %v, want nothing", after, st, err)
		}
		if got := tcQdisc(t, server.Netns, "eth0"); strings.Contains(got, "netem") {
			t.Errorf("after %s tc shows %q", after, got)
		}
		if got, _ := udpRun(t, client, dst, probe.Options{Count: 200, Interval: time.Millisecond, Timeout: 2 * time.Second}); got[probe.EventReply] != 200 {
			t.Errorf("after %s: %v, want 200 replies", after, got)
		}
	}
	applyNetemSeen(t, server, Netem{Dev: "eth0", Loss: 1}, "loss 100%")
	if got, _ := udpRun(t, client, dst, probe.Options{Count: 20, Interval: time.Millisecond, Timeout: 500 * time.Millisecond}); got[probe.EventReply] != 0 {
		t.Errorf("under loss 100%%: %v, want no reply", got)
	}
	start := time.Now()
	if err := Hold(ctx, o, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 5*time.Second {
		t.Errorf("Hold for 1.5s returned after %v", d)
	}
	wantGone("Hold 1.5s")

	applyNetemSeen(t, server, Netem{Dev: "eth0", Loss: 1}, "loss 100%")
	if err := Clear(ctx, o); err != nil {
		t.Fatal(err)
	}
	wantGone("Clear")
	if err := Clear(ctx, o); err != nil {
		t.Errorf("Clear of nothing: %v", err)
	}
}

// TestNetemSignals: a holder stopped by SIGTERM leaves nothing; one killed by SIGKILL leaves its
// netem qdisc, which Clear and the next apply remove.
func TestNetemSignals(t *testing.T) {
	_, server, _ := netemLab(t)
	ctx := context.Background()
	o := Options{Netns: server.Netns}
	hold := func() *exec.Cmd {
		cmd := startHolder(t, netemHolder+server.Netns)
		if st, err := Show(ctx, o); err != nil || len(st.Netem) != 1 {
			t.Fatalf("while held: %+v %v, want one netem", st, err)
		}
		return cmd
	}
	cmd := hold()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder after SIGTERM: %v", err)
	}
	if st, err := Show(ctx, o); err != nil || !st.Empty() {
		t.Errorf("after SIGTERM: %+v %v, want nothing left", st, err)
	}
	if got := tcQdisc(t, server.Netns, "eth0"); strings.Contains(got, "netem") {
		t.Errorf("after SIGTERM tc shows %q", got)
	}
	for _, next := range []string{"clear", "apply"} {
		cmd := hold()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if got := tcQdisc(t, server.Netns, "eth0"); !strings.Contains(got, "qdisc netem 7067: root") || !strings.Contains(got, "loss 30%") {
			t.Fatalf("after SIGKILL tc shows %q, want the holder's netem left behind", got)
		}
		switch next {
		case "clear":
			if err := Clear(ctx, o); err != nil {
				t.Fatal(err)
			}
			if got := tcQdisc(t, server.Netns, "eth0"); strings.Contains(got, "netem") {
				t.Errorf("SIGKILL then clear: tc shows %q", got)
			}
		case "apply":
			applyNetemSeen(t, server, Netem{Dev: "eth0", Delay: time.Millisecond}, "delay 1ms")
			if got := tcQdisc(t, server.Netns, "eth0"); strings.Contains(got, "loss") {
				t.Errorf("SIGKILL then apply: tc shows %q, the old loss survived", got)
			}
		}
	}
}

// TestNetemForeignQdisc: a root qdisc put there with tc, a netem of someone else's among them,
// is never touched: not by clear, not by show, not by apply (unless forced), and pinglab's own
// netem on another interface comes and goes beside it.
func TestNetemForeignQdisc(t *testing.T) {
	_, server, _ := netemLab(t)
	ctx := context.Background()
	o := Options{Netns: server.Netns}
	if out, err := runIn(t, server.Netns, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "netem", "delay", "3ms"); err != nil {
		t.Fatalf("tc qdisc add: %v: %s", err, out)
	}
	check := func(after string) {
		t.Helper()
		if got := tcQdisc(t, server.Netns, "eth0"); !strings.HasPrefix(got, "qdisc netem 1: root") || !strings.Contains(got, "delay 3ms") {
			t.Errorf("after %s tc shows %q, want the foreign netem 1: with its delay 3ms", after, got)
		}
	}
	err := ApplyNetem(ctx, o, Netem{Dev: "eth0", Loss: 0.2})
	if !errors.Is(err, ErrForeignQdisc) || !strings.Contains(err.Error(), "netem 1:0") {
		t.Errorf("netem over a foreign netem: %v, want ErrForeignQdisc naming netem 1:0", err)
	}
	check("a refused apply")
	applyNetemSeen(t, server, Netem{Dev: "lo", Loss: 0.1}, "loss 10%")
	st, err := Show(ctx, o)
	if err != nil || len(st.Netem) != 1 || st.Netem[0].Dev != "lo" {
		t.Errorf("Show: %+v %v, want pinglab's netem on lo only", st, err)
	}
	check("apply on lo")
	if err := Clear(ctx, o); err != nil {
		t.Fatal(err)
	}
	check("clear")
	if got := tcQdisc(t, server.Netns, "lo"); strings.Contains(got, "netem") {
		t.Errorf("after clear lo has %q", got)
	}
	if err := ApplyNetem(ctx, o, Netem{Dev: "eth0", Loss: 0.2, Force: true}); err != nil {
		t.Fatalf("--force over the foreign netem: %v", err)
	}
	if got := tcQdisc(t, server.Netns, "eth0"); !strings.Contains(got, "qdisc netem 7067: root") || !strings.Contains(got, "loss 20%") {
		t.Errorf("after --force tc shows %q, want pinglab's netem", got)
	}
}

// TestNetemAutoload: on a kernel whose netem is a module not yet loaded, applying netem loads
// it, as tc does, through the kernel's own module request. Inside the VM the test unloads the
// module first, so it always has that case; elsewhere it runs only where the module sits
// unloaded.
func TestNetemAutoload(t *testing.T) {
	l := testLab(t, 2)
	server := host(t, l, HostServer)
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	dep, err := os.ReadFile(filepath.Join("/lib/modules", release, "modules.dep"))
	if err != nil || !strings.Contains(string(dep), "/sch_netem.ko") {
		testutil.SkipForKernel(t, "sch_netem is not a module of kernel %s (%v)", release, err)
	}
	if loaded() {
		if !testutil.InVM() {
			t.Skip("sch_netem is loaded already; unloading it is for the VM only")
		}
		if err := unix.DeleteModule("sch_netem", unix.O_NONBLOCK); err != nil {
			t.Fatalf("unload sch_netem: %v", err)
		}
		if loaded() {
			t.Fatal("sch_netem still loaded after unloading it")
		}
	}
	if err := ApplyNetem(context.Background(), Options{Netns: server.Netns}, Netem{Dev: "eth0", Loss: 0.2}); err != nil {
		t.Fatalf("ApplyNetem with sch_netem unloaded: %v", err)
	}
	t.Cleanup(func() { _ = Clear(context.Background(), Options{Netns: server.Netns}) })
	if !loaded() {
		t.Errorf("ApplyNetem worked but sch_netem is not loaded")
	}
	t.Logf("sch_netem was unloaded; ApplyNetem loaded it: %s", tcQdisc(t, server.Netns, "eth0"))
}

func loaded() bool {
	_, err := os.Stat("/sys/module/sch_netem")
	return err == nil
}

// netemHolder prefixes the holder's namespace to make it hold a netem qdisc, not a drop.
const netemHolder = "netem:"

func holdNetem(ctx context.Context, o Options) error {
	return ApplyNetem(ctx, o, Netem{Dev: "eth0", Loss: 0.3})
}
