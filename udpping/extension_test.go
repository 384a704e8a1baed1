package udpping

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/heartbeat"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
)

// ask sends b to the server from sock and returns the answer, or nil after a short wait.
func ask(t *testing.T, sock *net.UDPConn, to netip.AddrPort, b []byte) []byte {
	t.Helper()
	if _, err := sock.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = sock.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	n, _, err := sock.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestServerReceipts(t *testing.T) {
	s := startServer(t, ServerConfig{})
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	const id = 77
	now := time.Now()
	var last pingmsg.Receipt
	for _, seq := range []int{1, 2, 4} {
		req := pingmsg.AppendOneWay(nil, seq, now, id, pingmsg.OneWaySize)
		got := ask(t, sock, s.Addr(), req)
		if len(got) != len(req) {
			t.Fatalf("answer to ping %d is %d bytes, want the request's %d", seq, len(got), len(req))
		}
		r, ok := pingmsg.ParseReceipt(got)
		if !ok {
			t.Fatalf("answer %q has no receipt", got)
		}
		if seq, ok := pingmsg.ParseSeq(got); !ok || seq != r.Highest {
			t.Errorf("answer %q: seq %d, receipt highest %d", got, seq, r.Highest)
		}
		if r.Received.Before(now) || r.Received.After(time.Now()) {
			t.Errorf("receipt time %v outside the exchange", r.Received)
		}
		last = r
	}
	if last.Count != 3 || last.Highest != 4 || last.Window != 0b1101 || last.ID != id {
		t.Errorf("last receipt %+v: want count 3, highest 4, window 1101", last)
	}
	// A status query is answered with the run's receipt, and not counted.
	st, ok := pingmsg.ParseReceipt(ask(t, sock, s.Addr(), pingmsg.AppendOneWay(nil, 0, now, id, pingmsg.OneWaySize)))
	if !ok || st.Count != 3 || st.Window != 0b1101 {
		t.Errorf("status receipt %+v, %v", st, ok)
	}
	// A plain ping is echoed as ever; a request with no room for the answer is echoed plainly.
	plain := pingmsg.Append(nil, 5, now, 40)
	if got, want := ask(t, sock, s.Addr(), bytes.Clone(plain)), bytes.ToUpper(plain); !bytes.Equal(got, want) {
		t.Errorf("plain ping echoed %q, want %q", got, want)
	}
	short := pingmsg.AppendOneWay(nil, 6, now, id, 70)
	if got, want := ask(t, sock, s.Addr(), bytes.Clone(short)), bytes.ToUpper(short); !bytes.Equal(got, want) {
		t.Errorf("short request answered %q, want the plain echo %q", got, want)
	}
	// A heartbeat is taken in, not answered.
	if got := ask(t, sock, s.Addr(), pingmsg.AppendHeartbeat(nil, 1, now)); got != nil {
		t.Errorf("heartbeat answered %q", got)
	}
	waitStats(t, s, func(c []ClientStats) bool { return len(c) == 1 && c[0].Heartbeats == 1 })
}

// runOneWay pings addr with receipts asked for and returns the directions of its losses.
func runOneWay(t *testing.T, addr netip.AddrPort, n int) (map[probe.Direction][]int, int, int) {
	t.Helper()
	c, err := Dial(context.Background(), Config{Addr: addr.String(), OneWay: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dirs := map[probe.Direction][]int{}
	receipts, timeouts := 0, 0
	_, err = probe.Run(context.Background(), c, probe.Options{Count: n, Interval: time.Millisecond, Timeout: 500 * time.Millisecond},
		func(ev probe.Event) {
			switch ev.Type {
			case probe.EventReply:
				if ev.Receipt != nil {
					receipts++
				}
			case probe.EventTimeout:
				timeouts++
			case probe.EventDirection:
				dirs[ev.Dir] = append(dirs[ev.Dir], ev.Seq)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, seqs := range dirs {
		slices.Sort(seqs)
	}
	return dirs, receipts, timeouts
}

func TestOneWayServerDrops(t *testing.T) {
	// The server's --drop acts where a datagram arrives: its pings are lost on the way out.
	var mu sync.Mutex
	var dropped []int
	s := startServer(t, ServerConfig{Drop: 0.3, Seed: 5, Log: func(m Message) {
		// A status query (seq 0) may be dropped too; the client asks again.
		if seq, ok := pingmsg.ParseSeq(m.Data); ok && m.Action == Dropped {
			mu.Lock()
			dropped = append(dropped, seq)
			mu.Unlock()
		}
	}})
	dirs, receipts, timeouts := runOneWay(t, s.Addr(), 200)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(dropped)
	if diff := cmp.Diff(map[probe.Direction][]int{probe.Outbound: dropped}, dirs); diff != "" {
		t.Errorf("directions (-want +got):\n%s", diff)
	}
	if receipts != 200-len(dropped) || timeouts != len(dropped) {
		t.Errorf("%d replies with receipts, %d timeouts; want %d, %d", receipts, timeouts, 200-len(dropped), len(dropped))
	}
}

// python returns the path of python3, or skips (fails under CI) without it.
func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		testutil.SkipOrFail(t, "python3 is not installed (Debian: apt-get install python3): the handout's programs need it")
	}
	return p
}

// freePort returns a loopback UDP port free a moment ago.
func loopbackPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestOneWayHandoutServer(t *testing.T) {
	py := python(t)
	port := loopbackPort(t)
	cmd := exec.Command(py, filepath.Join("..", "scripts", "bench", "udp_server.py"), strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	// The server may take a moment to bind: ping until it answers.
	waitEcho(t, addr)
	dirs, receipts, timeouts := runOneWay(t, addr, 50)
	if receipts != 0 || len(dirs) != 0 || timeouts != 0 {
		t.Errorf("against the handout's server: %d receipts, directions %v, %d timeouts; want plain replies only", receipts, dirs, timeouts)
	}
}

func TestOneWayPlainEcho(t *testing.T) {
	// An echo that changes nothing (socat, nc): the request comes back lower-case.
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	dirs, receipts, timeouts := runOneWay(t, pc.LocalAddr().(*net.UDPAddr).AddrPort(), 20)
	if receipts != 0 || len(dirs) != 0 || timeouts != 0 {
		t.Errorf("against a plain echo: %d receipts, directions %v, %d timeouts; want plain replies only", receipts, dirs, timeouts)
	}
}

func waitEcho(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		_, _ = c.Write([]byte("ping 1 x"))
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(buf); err == nil {
			return
		}
	}
	t.Fatalf("no echo from %s", addr)
}

func TestHandoutClientAgainstServer(t *testing.T) {
	py := python(t)
	s := startServer(t, ServerConfig{})
	out, err := exec.Command(py, filepath.Join("..", "scripts", "bench", "udp_client.py"), "127.0.0.1",
		strconv.Itoa(int(s.Addr().Port())), "5").CombinedOutput()
	if err != nil {
		t.Fatalf("udp_client.py: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	replies := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Reply from 127.0.0.1: PING ") {
			replies++
		}
	}
	if replies != 5 || !strings.Contains(string(out), "Packet loss rate: 0.0%") {
		t.Errorf("the handout's client against pinglab's server printed:\n%s", out)
	}
}

// collect gathers a server's heartbeat events.
type collect struct {
	mu  sync.Mutex
	evs []heartbeat.Event
}

func (c *collect) add(e heartbeat.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, e)
	c.mu.Unlock()
}

func (c *collect) missing(kind heartbeat.Kind) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var seqs []int
	for _, e := range c.evs {
		if e.Kind != kind {
			continue
		}
		if kind != heartbeat.Missing {
			seqs = append(seqs, e.Seq)
			continue
		}
		for _, r := range e.Missing {
			for s := r.From; s <= r.To; s++ {
				seqs = append(seqs, s)
			}
		}
	}
	return seqs
}

func TestHeartbeatDropsAreExact(t *testing.T) {
	var got collect
	var mu sync.Mutex
	var dropped []int
	s := startServer(t, ServerConfig{Drop: 0.25, Seed: 11, Heartbeat: got.add, Log: func(m Message) {
		if m.Action == Dropped {
			seq, _, _ := pingmsg.ParseHeartbeat(m.Data, nil)
			mu.Lock()
			dropped = append(dropped, seq)
			mu.Unlock()
		}
	}})
	hc, err := DialHeartbeat(context.Background(), HeartbeatConfig{Addr: s.Addr().String(), Interval: 2 * time.Millisecond, Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if n, err := hc.Run(context.Background()); err != nil || n != 100 {
		t.Fatalf("Run = %d, %v", n, err)
	}
	waitStats(t, s, func(c []ClientStats) bool { return len(c) == 1 && c[0].Received == 100 })
	mu.Lock()
	defer mu.Unlock()
	// The missing heartbeats after the last one received cannot be seen yet.
	hb := s.Heartbeats()
	if len(hb) != 1 {
		t.Fatalf("heartbeat clients %+v", hb)
	}
	var want []int
	for _, d := range dropped {
		if d < hb[0].Last {
			want = append(want, d)
		}
	}
	if diff := cmp.Diff(want, got.missing(heartbeat.Missing)); diff != "" {
		t.Errorf("missing heartbeats (-dropped by the server +reported):\n%s", diff)
	}
	if len(want) < 10 {
		t.Errorf("only %d drops: the test shows little", len(want))
	}
	if hb[0].Lost != len(want) || hb[0].Received != 100-len(dropped) {
		t.Errorf("stats %+v: want %d lost, %d received", hb[0], len(want), 100-len(dropped))
	}
}

func TestHeartbeatHandoutClient(t *testing.T) {
	py := python(t)
	var got collect
	s := startServer(t, ServerConfig{Heartbeat: got.add, HeartbeatTimeout: 300 * time.Millisecond})
	out, err := exec.Command(py, filepath.Join("..", "scripts", "bench", "heartbeat_client.py"), "127.0.0.1",
		strconv.Itoa(int(s.Addr().Port())), "10", "0.01").CombinedOutput()
	if err != nil {
		t.Fatalf("heartbeat_client.py: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(got.missing(heartbeat.Stopped)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	hb := s.Heartbeats()
	if len(hb) != 1 || hb[0].Received != 10 || hb[0].Lost != 0 || hb[0].Last != 10 || !hb[0].Stopped {
		t.Errorf("the handout's heartbeat client: %+v, want 10 received, none lost, stopped after", hb)
	}
	// time.time() on the same clock: the one-way delay is small and positive.
	if d := hb[0].AvgDelay; d < 0 || d > time.Second {
		t.Errorf("one-way delay %v from the handout's timestamps", d)
	}
}
