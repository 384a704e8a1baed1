package abuse

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTCP waits until addr accepts connections.
func waitTCP(t *testing.T, addr string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp4", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s after 10s", addr)
}

// A verdict is what became of one connection to a busy server.
type verdict int

const (
	served verdict = iota // the ping was echoed
	busy                  // told "ERROR server busy ..."
	other                 // anything else: silence, a bare close, a reset
)

// tryConn connects to addr from local, sends a ping and says what came back within 10 s; a
// served connection is kept open (returned) so that it holds its slot.
func tryConn(addr, local string) (verdict, net.Conn, string) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return other, nil, err.Error()
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping 1 x\n"); err != nil {
		c.Close()
		return other, nil, err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case line == "PING 1 X\n":
		_ = c.SetDeadline(time.Time{})
		return served, c, line
	case strings.HasPrefix(line, "ERROR server busy"):
		c.Close()
		return busy, nil, line
	}
	c.Close()
	return other, nil, fmt.Sprintf("%q, %v", line, err)
}

// storm opens n connections to addr from each of the local addresses at once, and counts
// the verdicts; it returns the served connections, open (closed when the test ends).
func storm(t *testing.T, addr string, locals []string, n int) (map[verdict]int, []net.Conn) {
	t.Helper()
	var mu sync.Mutex
	count := map[verdict]int{}
	var others []string
	var open []net.Conn
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256) // a bound on connects in flight, not on connections
	for _, local := range locals {
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				v, c, what := tryConn(addr, local)
				<-sem
				mu.Lock()
				defer mu.Unlock()
				count[v]++
				if v == other && len(others) < 5 {
					others = append(others, what)
				}
				if c != nil {
					open = append(open, c)
					t.Cleanup(func() { c.Close() })
				}
			}()
		}
	}
	wg.Wait()
	if len(others) > 0 {
		t.Logf("some connections neither served nor told busy: %q", others)
	}
	return count, open
}

// TestTCPFileLimit runs the server under an open-file limit of 1024 and opens 1,500
// connections from three addresses: the server must say at start that it serves fewer, serve
// that many, tell every other one "busy", and, once they go, serve a polite client.
func TestTCPFileLimit(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatal("prlimit (util-linux) is needed")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	srv := startCmd(t, exec.Command("prlimit", "--nofile=1024:1024", pinglab, "tcp", "server", "-q", "-l", addr))
	waitTCP(t, addr)
	_, stderr := srv.output()
	const fit = 1024 - 128 // the server keeps 128 files for itself
	if want := fmt.Sprintf("warning: at most %d connections, not 16384: the open-file limit is 1024", fit); !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want a warning %q", stderr, want)
	}
	count, open := storm(t, addr, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, 500)
	t.Logf("1500 connections under RLIMIT_NOFILE 1024: %d served, %d told busy, %d neither", count[served], count[busy], count[other])
	if count[served] != fit || count[busy] != 1500-fit || count[other] != 0 {
		t.Errorf("served %d, busy %d, neither %d; want %d served and the other %d told busy",
			count[served], count[busy], count[other], fit, 1500-fit)
	}
	// A polite client beside a full server is told so; once some of the storm goes, it is
	// served.
	if v, c, what := tryConn(addr, "127.0.0.1"); v != busy {
		t.Errorf("a polite client beside a full server: %q, want told busy", what)
		if c != nil {
			c.Close()
		}
	}
	for _, c := range open[:min(len(open), 10)] {
		c.Close()
	}
	var v verdict
	var what string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var c net.Conn
		if v, c, what = tryConn(addr, "127.0.0.1"); v == served {
			c.Close()
			break
		}
	}
	if v != served {
		t.Errorf("a polite client after ten connections closed: %q, want its ping echoed", what)
	}
}

// TestTCPPerHost lets one host open more connections than its share and checks that the ones
// past it are told "busy" while a polite client from another address is served.
func TestTCPPerHost(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	start(t, "tcp", "server", "-q", "-l", addr, "--max-conns-per-host", "200")
	waitTCP(t, addr)
	count, _ := storm(t, addr, []string{"127.0.0.2"}, 300)
	t.Logf("300 connections from one host, 200 per host: %d served, %d told busy, %d neither", count[served], count[busy], count[other])
	if count[served] != 200 || count[busy] != 100 || count[other] != 0 {
		t.Errorf("served %d, busy %d, neither %d; want 200 served and 100 told busy", count[served], count[busy], count[other])
	}
	v, c, what := tryConn(addr, "127.0.0.1")
	if v != served {
		t.Errorf("polite client: %q, want its ping echoed", what)
	}
	if c != nil {
		c.Close()
	}
}
