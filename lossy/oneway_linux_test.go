package lossy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/report"
	"github.com/pinglab/pinglab/internal/stats"
	"github.com/pinglab/pinglab/udpping"
)

// oneWayRun pings dst from host h with one-way receipts and returns the statistics and the
// text summary the client prints.
func oneWayRun(t *testing.T, h LabHost, dst netip.AddrPort, cfg udpping.Config, opts probe.Options) (stats.Summary, string) {
	t.Helper()
	cfg.Addr, cfg.OneWay = dst.String(), true
	var c *udpping.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inHost(t, h, func() (err error) {
		c, err = udpping.Dial(ctx, cfg)
		return err
	})
	defer c.Close()
	st := stats.New()
	res, err := probe.Run(ctx, c, opts, st.Add)
	if err != nil {
		t.Fatalf("probe.Run: %v", err)
	}
	var out bytes.Buffer
	r, _ := report.New("text", &out, report.Options{Quiet: true})
	hd := report.Header{Proto: "udp", Target: dst.Addr().String(), Addr: dst.String(), Size: c.Size(), OneWay: true}
	r.Start(hd)
	sum := st.Summary()
	r.Finish(sum, res)
	return sum, out.String()
}

var lostLine = regexp.MustCompile(`(?m)^lost: (\d+) outbound, (\d+) inbound`)

// TestOneWayLoss drops 20% of the packets on one side of the link only, with nftables on one
// host's egress, and checks that the client puts the loss in that direction: the server's egress
// is the client's inbound direction, the client's egress its outbound one.
func TestOneWayLoss(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	udpServer(t, server, 12000)
	dst := netip.AddrPortFrom(server.Addr(false), 12000)
	const n = 2000
	for _, tc := range []struct {
		name    string
		on      LabHost
		drop    Drop
		wantDir string // the impaired direction
	}{
		{"server egress", server, Drop{Prob: 0.2, Proto: "udp", Port: 12000, Dir: "out"}, "inbound"},
		// Dropped where they arrive: the kernel fails a send that the sender's own output hook
		// drops (EPERM), which is no silent loss; TestOneWayOwnEgress shows that case.
		{"client to server, at the server's ingress", server, Drop{Prob: 0.2, Proto: "udp", Port: 12000, Dir: "in"}, "outbound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Netns: tc.on.Netns}
			if err := ApplyDrop(context.Background(), o, tc.drop); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Clear(context.Background(), o) })
			hook := map[string]string{"in": "hook input", "out": "hook output"}[tc.drop.Dir]
			if rs := nftRuleset(t, tc.on.Netns); !strings.Contains(rs, "numgen random mod 100 < 20") || !strings.Contains(rs, hook) {
				t.Fatalf("nft list ruleset in %s lacks the drop (%s):\n%s", tc.on.Netns, hook, rs)
			}
			sum, text := oneWayRun(t, client, dst, udpping.Config{},
				probe.Options{Count: n, Interval: time.Millisecond, Timeout: time.Second})
			t.Logf("%s: %d sent, %d received\n%s", tc.name, sum.Transmitted, sum.Received, text)
			impaired, clean := sum.LostInbound, sum.LostOutbound
			if tc.wantDir == "outbound" {
				impaired, clean = clean, impaired
			}
			// 20 ± 3% in the impaired direction, 0 ± 1% in the other, none undecided.
			if impaired < n*17/100 || impaired > n*23/100 {
				t.Errorf("%s loss %d of %d, want 20 ± 3%%", tc.wantDir, impaired, n)
			}
			if clean > n/100 {
				t.Errorf("loss in the other direction %d of %d, want at most 1%%", clean, n)
			}
			if sum.LostUnknown != 0 {
				t.Errorf("%d losses of unknown direction, want 0 (the status query tells the last ones)", sum.LostUnknown)
			}
			if got := sum.LostInbound + sum.LostOutbound + sum.LostUnknown; got != sum.Transmitted-sum.Received {
				t.Errorf("directions add up to %d, want the %d lost", got, sum.Transmitted-sum.Received)
			}
			m := lostLine.FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("summary has no lost line:\n%s", text)
			}
			if m[1] != strconv.Itoa(sum.LostOutbound) || m[2] != strconv.Itoa(sum.LostInbound) {
				t.Errorf("summary says %q, want %d outbound, %d inbound", m[0], sum.LostOutbound, sum.LostInbound)
			}
		})
	}
}

// TestOneWayOwnEgress drops on the client's own output hook: Linux then fails the send with
// EPERM, so the client counts those probes as errors ("+N errors"), not as losses of either
// direction, and nothing else is lost.
func TestOneWayOwnEgress(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	udpServer(t, server, 12000)
	dst := netip.AddrPortFrom(server.Addr(false), 12000)
	o := Options{Netns: client.Netns}
	if err := ApplyDrop(context.Background(), o, Drop{Prob: 0.2, Proto: "udp", From: netip.PrefixFrom(dst.Addr(), 32), Dir: "out"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Clear(context.Background(), o) })
	const n = 500
	sum, text := oneWayRun(t, client, dst, udpping.Config{}, probe.Options{Count: n, Interval: time.Millisecond, Timeout: time.Second})
	t.Logf("%s", text)
	if sum.Errors < n*12/100 || sum.Errors > n*28/100 {
		t.Errorf("%d errors of %d, want about 20%%", sum.Errors, n)
	}
	if sum.LostInbound+sum.LostOutbound+sum.LostUnknown != 0 || sum.Timeouts != 0 {
		t.Errorf("lost %d outbound, %d inbound, %d unknown, %d timeouts; want none: the sends failed, nothing was lost on the way",
			sum.LostOutbound, sum.LostInbound, sum.LostUnknown, sum.Timeouts)
	}
}

// TestOneWayDelay delays one direction and checks that the delay variation shows in that
// direction only. This kernel has no netem, so each direction gets an impairment of its own
// kind, both real: the way back, pinglab's server holding each reply a random 0 to 10 ms
// (its receipt is taken when the ping is read, so the hold is on the inbound side); the way
// out, a token bucket (tc tbf) on the client's egress that a bulk sender in the client's
// namespace keeps full in bursts, so that each ping waits behind a varying queue, as behind an
// upload on a slow uplink.
func TestOneWayDelay(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	const port = 12001
	var s *udpping.Server
	ctx, cancel := context.WithCancel(context.Background())
	inHost(t, server, func() (err error) {
		s, err = udpping.Listen(ctx, udpping.ServerConfig{Addr: fmt.Sprintf("[::]:%d", port), Delay: 5 * time.Millisecond,
			Jitter: 5 * time.Millisecond, Seed: 1})
		return err
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); s.Close(); <-done })
	dst := netip.AddrPortFrom(server.Addr(false), port)
	opts := probe.Options{Count: 300, Interval: 10 * time.Millisecond, Timeout: time.Second}

	sum, text := oneWayRun(t, client, dst, udpping.Config{}, opts)
	t.Logf("server jitter:\n%s", text)
	in, out := sum.Inbound.Variation, sum.Outbound.Variation
	// Uniform 0..10 ms: consecutive holds differ by 3.3 ms on average.
	if in < 2*time.Millisecond || out > in/10 {
		t.Errorf("server-held replies: inbound variation %v, outbound %v; want inbound above 2 ms and outbound under a tenth of it", in, out)
	}

	// The way out: a 2 Mbit/s bucket on the client's uplink, and 10 KB bursts every 40 ms.
	dev := client.Links[0].Dev
	if out, err := runIn(t, client.Netns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "2mbit",
		"burst", "3000", "latency", "200ms"); err != nil {
		t.Fatalf("tc qdisc add tbf: %v: %s", err, out)
	}
	if out, err := runIn(t, client.Netns, "tc", "qdisc", "show", "dev", dev); err != nil || !strings.Contains(out, "tbf") {
		t.Fatalf("tc qdisc show: %v: %s", err, out)
	}
	bulkCtx, stopBulk := context.WithCancel(context.Background())
	bulkDone := make(chan struct{})
	var bulk net.Conn
	inHost(t, client, func() (err error) {
		// Nothing listens on the discard port: the server's kernel answers port unreachable,
		// which is all right for traffic whose only job is to fill the queue.
		bulk, err = net.Dial("udp4", netip.AddrPortFrom(dst.Addr(), 9).String())
		return err
	})
	go func() {
		defer close(bulkDone)
		defer bulk.Close()
		payload := make([]byte, 1000)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			for range 10 {
				_, _ = bulk.Write(payload)
			}
			select {
			case <-bulkCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	sum, text = oneWayRun(t, client, dst, udpping.Config{}, opts)
	stopBulk()
	<-bulkDone
	t.Logf("server jitter and a queue on the client's uplink:\n%s", text)
	out2 := sum.Outbound.Variation
	if out2 < 2*time.Millisecond || out2 < 5*out {
		t.Errorf("queued uplink: outbound variation %v (without the queue %v); want above 2 ms and 5 times more", out2, out)
	}
	// The way back is as it was: the server's hold alone.
	if in2 := sum.Inbound.Variation; in2 > 2*in || in2 < in/2 {
		t.Errorf("queued uplink: inbound variation %v, was %v without the queue; want it unchanged", in2, in)
	}
}
