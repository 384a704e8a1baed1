package abuse

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

// Bounds of TestUDPDelayFlood: the server's peak RSS, and the share of a polite client's pings
// that must come back while four sockets flood it.
const (
	floodRSSMB     = 128
	floodPoliteMin = 0.9
	floodFor       = 20 * time.Second
)

// TestUDPDelayFlood floods a --delay 1s server from four sockets, unpaced, for 20 s with 0-,
// 40- and 1400-byte datagrams (the small ones cost a buffer each, not their length), while a
// polite client sends a ping a second and waits up to 5 s for each. The server must stay under
// floodRSSMB, answer at least floodPoliteMin of the polite pings, and count what it shed in
// its table.
func TestUDPDelayFlood(t *testing.T) {
	port := freePort(t, "udp")
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	// The flood (below) runs at nice 19: it takes the CPU that the server and the other tests
	// (CI runs packages in parallel) leave, so that it neither starves the server's read loop,
	// which would leave the kernel to drop at the socket what was never read, whoever sent it,
	// nor slows the other tests' timing.
	srv := start(t, "udp", "server", "-q", "-l", addr.String(), "--delay", "1s")

	polite, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer polite.Close()
	// Up: an echo comes back (after its second).
	waitEcho(t, polite)

	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()
	rss := peakRSS(ctx, srv.cmd.Process.Pid)
	// The flood is a process of its own: unpaced, four sockets (four clients to the server),
	// taking whatever CPU the server leaves. The server's table must show that it shed
	// (asserted below): the flood did fill its queue.
	flood := exec.Command("nice", "-n", "19", os.Args[0], "-test.run=^$")
	flood.Env = append(os.Environ(), floodEnv+"="+addr.String())
	var floodOut bytes.Buffer
	flood.Stdout = &floodOut
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}

	const pings = 20
	replied := make(chan int, 64)
	sentAt := make([]time.Time, pings+1)
	var sentMu sync.Mutex
	go func() {
		buf := make([]byte, 2048)
		for {
			_ = polite.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := polite.Read(buf)
			if err != nil {
				return
			}
			if seq, ok := pingmsg.ParseSeq(buf[:n]); ok && seq >= 1 && seq <= pings {
				sentMu.Lock()
				late := time.Since(sentAt[seq]) > 5*time.Second
				sentMu.Unlock()
				if !late {
					replied <- seq
				}
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	for seq := 1; seq <= pings; seq++ {
		sentMu.Lock()
		sentAt[seq] = time.Now()
		sentMu.Unlock()
		if _, err := polite.Write(pingmsg.Append(nil, seq, time.Now(), 0)); err != nil {
			t.Fatal(err)
		}
		if seq < pings {
			<-tick.C
		}
	}
	tick.Stop()
	got := map[int]bool{}
	deadline := time.After(5 * time.Second)
collect:
	for len(got) < pings {
		select {
		case seq := <-replied:
			got[seq] = true
		case <-deadline:
			break collect
		}
	}
	cancel()
	_ = flood.Wait()
	peak := <-rss
	out, _ := srv.stop(t)
	t.Logf("flood: %s datagrams in %v; server peak RSS %.1f MB; polite client: %d of %d replies",
		strings.TrimSpace(floodOut.String()), floodFor, peak, len(got), pings)
	t.Logf("server table:\n%s", out)
	if peak > floodRSSMB {
		t.Errorf("server peak RSS %.1f MB, want under %d MB", peak, floodRSSMB)
	}
	if share := float64(len(got)) / pings; share < floodPoliteMin {
		t.Errorf("polite client got %d of %d replies (%.0f%%), want at least %.0f%%", len(got), pings, 100*share, 100*floodPoliteMin)
	}
	// The load shed shows in the table: a "shed" column with the flooders' counts.
	m := regexp.MustCompile(`(?m)^total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no total row with a shed column in the server's table:\n%s", out)
	}
	if shed, _ := strconv.Atoi(m[5]); shed == 0 {
		t.Errorf("the server shed nothing under the flood:\n%s", out)
	}
}

// floodEnv names the address a child of the test binary floods (see TestMain).
const floodEnv = "PINGLAB_ABUSE_FLOOD"

// floodUDP sends to addr from four sockets, round robin, unpaced, with 0-, 40- and 1400-byte
// datagrams, for d, and returns how many it sent.
func floodUDP(addr string, d time.Duration) int64 {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return 0
	}
	var socks []*net.UDPConn
	for range 4 {
		c, err := net.DialUDP("udp4", nil, ua)
		if err != nil {
			return 0
		}
		socks = append(socks, c)
	}
	sizes := []int{0, 40, 0, 40, 0, 40, 0, 1400}
	buf := make([]byte, 1400)
	var sent int64
	end := time.Now().Add(d)
	for n := 0; ; n++ {
		if n%1024 == 0 && time.Now().After(end) {
			return sent
		}
		if _, err := socks[n%len(socks)].Write(buf[:sizes[(n/4)%len(sizes)]]); err == nil {
			sent++
		}
	}
}

// waitEcho sends a datagram until one comes back, for up to 10 s.
func waitEcho(t *testing.T, c *net.UDPConn) {
	t.Helper()
	buf := make([]byte, 64)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		if _, err := c.Write([]byte("up?")); err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "UP?" {
			return
		}
	}
	t.Fatal("the server did not echo within 10s")
}
