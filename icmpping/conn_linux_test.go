package icmpping

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
)

func TestMain(m *testing.M) {
	// The unprivileged tests re-run this binary as another user in a namespace; then it does
	// only what the parent asked and reports on stdout.
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	os.Exit(m.Run())
}

// pingOnce sends probe seq over c and waits for what comes back for it.
func pingOnce(t *testing.T, c *Conn, seq int) probe.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Send(ctx, seq); err != nil {
		t.Fatalf("send %d: %v", seq, err)
	}
	for {
		p, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %d: %v", seq, err)
		}
		if p.Seq == seq {
			return p
		}
	}
}

// loopbackModes are the socket modes a test can open here: raw as root, datagram where
// ping_group_range lets this process in.
func dial(t *testing.T, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	if c.Raw() != cfg.Privileged {
		t.Fatalf("Dial(%+v): raw = %v", cfg, c.Raw())
	}
	return c
}

func checkLoopbackReply(t *testing.T, c *Conn, target string, seq int) {
	t.Helper()
	before := time.Now()
	p := pingOnce(t, c, seq)
	if p.Kind != probe.KindReply || p.From != target || p.Bytes != 64 || p.TTL != 64 {
		t.Errorf("seq %d: got %+v, want a 64-byte reply from %s with ttl 64", seq, p, target)
	}
	if p.Time.Before(before) || time.Since(p.Time) > 5*time.Second {
		t.Errorf("seq %d: kernel timestamp %v is not between the send (%v) and now", seq, p.Time, before)
	}
}

func TestLoopbackRaw(t *testing.T) {
	testutil.RequireRoot(t)
	for _, target := range []string{"127.0.0.1", "::1"} {
		t.Run(target, func(t *testing.T) {
			c := dial(t, Config{Target: netip.MustParseAddr(target), Privileged: true})
			for seq := 1; seq <= 3; seq++ {
				checkLoopbackReply(t, c, target, seq)
			}
		})
	}
}

// TestLoopbackDatagram pings loopback over datagram sockets, in a namespace of its own whose
// ping_group_range lets root's group in (the default "1 0" lets nobody in).
func TestLoopbackDatagram(t *testing.T) {
	ns := newNamespace(t, "dgram")
	ns.sysctl(t, "net/ipv4/ping_group_range", "0 2147483647")
	for _, target := range []string{"127.0.0.1", "::1"} {
		t.Run(target, func(t *testing.T) {
			var c *Conn
			ns.do(t, func() { c = dial(t, Config{Target: netip.MustParseAddr(target)}) })
			for seq := 1; seq <= 3; seq++ {
				checkLoopbackReply(t, c, target, seq)
			}
		})
	}
}

// TestSeqWraparound sends probes across the 16-bit wrap of the ICMP sequence number.
func TestSeqWraparound(t *testing.T) {
	testutil.RequireRoot(t)
	c := dial(t, Config{Target: netip.MustParseAddr("127.0.0.1"), Privileged: true})
	for _, seq := range []int{65534, 65535, 65536, 65537, 131073} {
		p := pingOnce(t, c, seq)
		if p.Kind != probe.KindReply {
			t.Errorf("seq %d: %+v", seq, p)
		}
	}
}

// TestConcurrentRunsDoNotMix runs four pingers (two raw, two datagram) against one target at
// once, all with the same sequence numbers: each must see exactly one reply per probe of its own.
func TestConcurrentRunsDoNotMix(t *testing.T) {
	ns := newNamespace(t, "conc")
	ns.sysctl(t, "net/ipv4/ping_group_range", "0 2147483647")
	for _, target := range []string{"127.0.0.1", "::1"} {
		t.Run(target, func(t *testing.T) {
			var conns []*Conn
			ns.do(t, func() {
				for _, raw := range []bool{true, true, false, false} {
					conns = append(conns, dial(t, Config{Target: netip.MustParseAddr(target), Privileged: raw}))
				}
			})
			const n = 30
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			counts := make([]map[int]int, len(conns))
			var wg sync.WaitGroup
			for i, c := range conns {
				counts[i] = map[int]int{}
				wg.Add(2)
				go func() {
					defer wg.Done()
					for seq := 1; seq <= n; seq++ {
						if _, err := c.Send(ctx, seq); err != nil {
							t.Errorf("conn %d send %d: %v", i, seq, err)
							return
						}
						time.Sleep(time.Millisecond)
					}
				}()
				go func() {
					defer wg.Done()
					// Read until every reply came and then a while longer, for strays.
					rctx, stop := context.WithCancel(ctx)
					defer stop()
					var quiet *time.Timer
					for {
						p, err := c.Receive(rctx)
						if err != nil {
							if quiet == nil {
								t.Errorf("conn %d: %v after %d replies", i, err, len(counts[i]))
							}
							return
						}
						if p.Kind != probe.KindReply {
							t.Errorf("conn %d: %+v", i, p)
						}
						counts[i][p.Seq]++
						if len(counts[i]) == n && quiet == nil {
							quiet = time.AfterFunc(300*time.Millisecond, stop)
						}
					}
				}()
			}
			wg.Wait()
			for i := range conns {
				for seq := 1; seq <= n; seq++ {
					if counts[i][seq] != 1 {
						t.Errorf("conn %d (raw %v): seq %d came back %d times", i, conns[i].Raw(), seq, counts[i][seq])
					}
				}
				if len(counts[i]) != n {
					t.Errorf("conn %d: replies for %d sequence numbers, want %d", i, len(counts[i]), n)
				}
			}
		})
	}
}

func TestReceiveReturnsOnCancel(t *testing.T) {
	testutil.RequireRoot(t)
	c := dial(t, Config{Target: netip.MustParseAddr("127.0.0.1"), Privileged: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Receive(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not return after cancel")
	}
	// The Conn still works after a cancelled Receive.
	checkLoopbackReply(t, c, "127.0.0.1", 1)
}

// childEnv carries what a re-run test binary is to do: "ping ADDR" or "trace ADDR".
const childEnv = "ICMPPING_TEST_CHILD"

// childMain runs as an unprivileged user: it pings or traces and prints one line saying what
// happened, which the parent checks.
func childMain(spec string) int {
	verb, target, _ := strings.Cut(spec, " ")
	addr, err := netip.ParseAddr(target)
	if err != nil {
		fmt.Println("bad spec:", spec)
		return 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch verb {
	case "ping":
		c, err := Dial(ctx, Config{Target: addr})
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		defer c.Close()
		if _, err := c.Send(ctx, 1); err != nil {
			fmt.Println("send:", err)
			return 1
		}
		p, err := c.Receive(ctx)
		if err != nil {
			fmt.Println("receive:", err)
			return 1
		}
		fmt.Printf("raw=%v kind=%d seq=%d from=%s bytes=%d\n", c.Raw(), p.Kind, p.Seq, p.From, p.Bytes)
	case "trace-udp", "trace-icmp":
		var hops []string
		err := Trace(ctx, TraceConfig{Target: addr, Proto: strings.TrimPrefix(verb, "trace-"), Queries: 1, Wait: 3 * time.Second},
			func(h Hop) { hops = append(hops, h.Probes[0].From.String()) })
		if err != nil {
			fmt.Println("trace:", err)
			return 1
		}
		fmt.Println("hops=" + strings.Join(hops, ","))
	default:
		fmt.Println("bad spec:", spec)
		return 3
	}
	return 0
}
