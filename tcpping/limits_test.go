package tcpping

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// dialFrom connects to srv from the loopback address local.
func dialFrom(t *testing.T, local string, srv *Server) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoes reports whether c is served: a line goes out and comes back upper-cased.
func echoes(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "x\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "X\n"
}

// TestMaxConnsPerHost fills one host's share and checks that its next connection is told so,
// while another host is still served.
func TestMaxConnsPerHost(t *testing.T) {
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{MaxConnsPerHost: 3})
	for i := range 3 {
		if c := dialFrom(t, "127.0.0.2", srv); !echoes(t, c) {
			t.Fatalf("connection %d of 127.0.0.2 not served", i+1)
		}
	}
	c := dialFrom(t, "127.0.0.2", srv)
	if got, want := string(readAll(t, c)), "ERROR server busy (3 connections from 127.0.0.2)\n"; got != want {
		t.Errorf("fourth connection of 127.0.0.2 got %q, want %q", got, want)
	}
	if c := dialFrom(t, "127.0.0.1", srv); !echoes(t, c) {
		t.Error("a polite host was not served beside a host at its cap")
	}
}

// TestMessageTimeout trickles a byte at a time without a newline and checks the server closes
// the connection at the message timeout, though each byte restarts the idle timeout; a client
// sending whole lines as slowly is kept.
func TestMessageTimeout(t *testing.T) {
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{IdleTimeout: time.Minute, MessageTimeout: 500 * time.Millisecond})
	trickle := dialFrom(t, "127.0.0.1", srv)
	lines := dialFrom(t, "127.0.0.1", srv)
	start := time.Now()
	var wg sync.WaitGroup
	var got []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		got = readAll(t, trickle)
	}()
	for time.Since(start) < 1500*time.Millisecond {
		_, _ = trickle.Write([]byte("p"))
		if !echoes(t, lines) {
			t.Fatal("a client of whole lines was not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	const tail = "ERROR message not completed in 500ms\n"
	if !strings.HasSuffix(string(got), tail) {
		t.Errorf("trickling client got %q, want it to end with %q", got, tail)
	}
	if !echoes(t, lines) {
		t.Error("a client of whole lines was not served after 1.5 s")
	}
}

// TestRefusedAllTold opens many more connections than the server takes at once, all together,
// and checks that every one refused is told "ERROR server busy", also past the refusals that
// linger.
func TestRefusedAllTold(t *testing.T) {
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{MaxConns: 1})
	if c := dialFrom(t, "127.0.0.1", srv); !echoes(t, c) {
		t.Fatal("first connection not served")
	}
	const n = 4 * maxRefusing
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		c := dialFrom(t, "127.0.0.1", srv)
		// Each sends its ping at once, as a client does: the unread ping must not turn the
		// close into a reset that destroys the line.
		_, _ = io.WriteString(c, "ping 1 x\n")
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = string(readAll(t, c)) }()
	}
	wg.Wait()
	told := 0
	for _, g := range got {
		if g == "ERROR server busy (1 connections)\n" {
			told++
		}
	}
	if told != n {
		t.Errorf("%d of %d refused connections told the server is busy; the others got %q", told, n, other(got))
	}
}

func other(got []string) []string {
	var out []string
	for _, g := range got {
		if !strings.HasPrefix(g, "ERROR server busy") && len(out) < 5 {
			out = append(out, g)
		}
	}
	return out
}
