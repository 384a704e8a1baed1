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
	"github.com/pinglab/pinglab/internal/testutil"
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

// TestOneWayLoss drops 20% of the packets on one direction of the link only, with nftables
// where the packets arrive, and checks that the client puts the loss in that direction. The
// drop is in the receiving host's input hook: a drop in the sender's own output hook is no
// silent loss on the way (the send fails with EPERM, and a sender may send again).
func TestOneWayLoss(t *testing.T) {
	testutil.HostOnly(t, "its 2000 probes a millisecond apart are more than the emulated CPU keeps up with, and it uses nftables, not netem")
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
		{"server to client, at the client's ingress", client, Drop{Prob: 0.2, Proto: "udp", From: netip.PrefixFrom(dst.Addr(), 32), Dir: "in"}, "inbound"},
		{"client to server, at the server's ingress", server, Drop{Prob: 0.2, Proto: "udp", Port: 12000, Dir: "in"}, "outbound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Netns: tc.on.Netns}
			if err := ApplyDrop(context.Background(), o, tc.drop); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Clear(context.Background(), o) })
			if rs := nftRuleset(t, tc.on.Netns); !strings.Contains(rs, "numgen random mod 100 < 20") || !strings.Contains(rs, "hook input") {
				t.Fatalf("nft list ruleset in %s lacks the input drop:\n%s", tc.on.Netns, rs)
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

// TestOneWayDelay delays one direction at a time and checks that the delay variation shows in
// that direction and not the other. This kernel has no netem, so each direction gets a real
// impairment of its own kind: the way back, pinglab's server holding each reply a random 5 to
// 45 ms (its receipt is taken when the ping is read, so the hold is on the inbound side); the
// way out, a token bucket (tc tbf) on the client's uplink that a bulk sender in the client's
// namespace fills in bursts, so that each ping waits behind a queue of varying length, as
// behind an upload on a slow uplink. Load on the machine adds noise to both directions alike.
func TestOneWayDelay(t *testing.T) {
	l := testLab(t, 2)
	client, server := host(t, l, HostClient), host(t, l, HostServer)
	serve := func(port int, cfg udpping.ServerConfig) netip.AddrPort {
		var s *udpping.Server
		ctx, cancel := context.WithCancel(context.Background())
		cfg.Addr = fmt.Sprintf("[::]:%d", port)
		inHost(t, server, func() (err error) {
			s, err = udpping.Listen(ctx, cfg)
			return err
		})
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Serve(ctx) }()
		t.Cleanup(func() { cancel(); s.Close(); <-done })
		return netip.AddrPortFrom(server.Addr(false), uint16(port))
	}
	held := serve(12001, udpping.ServerConfig{Delay: 25 * time.Millisecond, Jitter: 20 * time.Millisecond, Seed: 1})
	plain := serve(12002, udpping.ServerConfig{})
	opts := probe.Options{Count: 300, Interval: 10 * time.Millisecond, Timeout: time.Second}
	// impaired runs a measurement until the impaired direction's variation is above 4 ms and 3
	// times the other's, at most three times: a loaded machine (CI runs packages side by side
	// under the race detector) can stall the client between its clock read and its send, which
	// adds variation to the outbound direction of one run, never to the impaired one alone.
	impaired := func(what string, run func() (hot, cold time.Duration, text string)) {
		t.Helper()
		for try := 1; ; try++ {
			hot, cold, text := run()
			t.Logf("%s, run %d:\n%s", what, try, text)
			if hot >= 4*time.Millisecond && hot >= 3*cold {
				return
			}
			if try == 3 {
				t.Errorf("%s: variation %v in the impaired direction, %v in the other; want above 4 ms and 3 times the other", what, hot, cold)
				return
			}
		}
	}

	impaired("replies held 5 to 45 ms by the server", func() (time.Duration, time.Duration, string) {
		sum, text := oneWayRun(t, client, held, udpping.Config{}, opts)
		return sum.Inbound.Variation, sum.Outbound.Variation, text
	})

	// The way out: a 1 Mbit/s bucket on the client's uplink, and 10 KB bursts every 100 ms,
	// each of which takes 80 ms to drain.
	dev := client.Links[0].Dev
	if out, err := runIn(t, client.Netns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "1mbit",
		"burst", "3000", "latency", "300ms"); err != nil {
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
		bulk, err = net.Dial("udp4", netip.AddrPortFrom(plain.Addr(), 9).String())
		return err
	})
	go func() {
		defer close(bulkDone)
		defer bulk.Close()
		payload := make([]byte, 1000)
		tick := time.NewTicker(100 * time.Millisecond)
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
	defer func() { stopBulk(); <-bulkDone }()
	impaired("a queue on the client's uplink", func() (time.Duration, time.Duration, string) {
		sum, text := oneWayRun(t, client, plain, udpping.Config{}, opts)
		return sum.Outbound.Variation, sum.Inbound.Variation, text
	})
}
