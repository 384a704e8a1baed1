package tcpping

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
	"github.com/pinglab/pinglab/internal/testutil"
)

// oneWay runs pings with receipts asked for and returns the statistics and the seqs timed out
// and given each direction.
func oneWay(t *testing.T, cfg Config, opts probe.Options) (stats.Summary, []int, map[probe.Direction][]int) {
	t.Helper()
	cfg.OneWay = true
	cl, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st := stats.New()
	var timeouts []int
	dirs := map[probe.Direction][]int{}
	_, err = probe.Run(context.Background(), cl, opts, func(ev probe.Event) {
		st.Add(ev)
		switch ev.Type {
		case probe.EventTimeout:
			timeouts = append(timeouts, ev.Seq)
		case probe.EventDirection:
			dirs[ev.Dir] = append(dirs[ev.Dir], ev.Seq)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(timeouts)
	for _, s := range dirs {
		slices.Sort(s)
	}
	return st.Summary(), timeouts, dirs
}

func TestOneWaySwallowed(t *testing.T) {
	// Swallowed messages never reach the receipts: their pings count lost on the way out.
	for _, mode := range []ConnectMode{ConnectKeep, ConnectPerPing} {
		t.Run(mode.String(), func(t *testing.T) {
			srv, _ := startServer(t, "127.0.0.1", ServerConfig{Drop: 0.3, DropMode: DropSilent, Seed: 4})
			sum, timeouts, dirs := oneWay(t, Config{Addr: srv.Addr().String(), Connect: mode, Timeout: 300 * time.Millisecond},
				probe.Options{Count: 60, Interval: 5 * time.Millisecond, Timeout: 300 * time.Millisecond})
			if len(timeouts) < 5 {
				t.Fatalf("only %d timeouts: the test shows little", len(timeouts))
			}
			if diff := cmp.Diff(map[probe.Direction][]int{probe.Outbound: timeouts}, dirs); diff != "" {
				t.Errorf("directions (-want +got):\n%s", diff)
			}
			if !sum.OneWay || sum.Outbound.Samples != sum.Received {
				t.Errorf("summary %+v: want a receipt on every reply", sum)
			}
		})
	}
}

func TestOneWayDelayedEchoes(t *testing.T) {
	// The server's delay holds the echo: it shows on the way back only.
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{Delay: 15 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 2})
	sum, _, _ := oneWay(t, Config{Addr: srv.Addr().String()}, probe.Options{Count: 100, Interval: 5 * time.Millisecond})
	if in, out := sum.Inbound.Variation, sum.Outbound.Variation; in < 2*time.Millisecond || in < 3*out {
		t.Errorf("inbound variation %v, outbound %v: want inbound above 2 ms and 3 times outbound", in, out)
	}
	if sum.Inbound.Min < 5*time.Millisecond {
		t.Errorf("inbound delay min %v, below the server's least hold of 5 ms", sum.Inbound.Min)
	}
}

func TestOneWayHandoutServer(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		testutil.SkipOrFail(t, "python3 is not installed (Debian: apt-get install python3): the handout's server needs it")
	}
	port := closedPort(t, "127.0.0.1").Port()
	cmd := exec.Command(py, filepath.Join("..", "scripts", "bench", "tcp_server.py"), strconv.Itoa(int(port)))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	// Wait until the server listens, so that no ping meets a refused connect.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp4", addr.String())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the handout's server does not listen on %s: %v", addr, err)
		}
	}
	cl, err := Dial(context.Background(), Config{Addr: addr.String(), OneWay: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st := stats.New()
	if _, err := probe.Run(context.Background(), cl, probe.Options{Count: 10, Interval: time.Millisecond, Timeout: 5 * time.Second}, st.Add); err != nil {
		t.Fatal(err)
	}
	sum := st.Summary()
	if sum.Received != 10 || sum.OneWay {
		t.Errorf("against the handout's server: %d of 10 replies, one-way %v; want 10 plain replies", sum.Received, sum.OneWay)
	}
}
