package sock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCapitalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"connection refused", "Connection refused"},
		{"Already", "Already"},
		{"1 thing", "1 thing"},
		{"é", "é"},
	} {
		if got := Capitalize(tc.in); got != tc.want {
			t.Errorf("Capitalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPendingErrno(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", syscall.ECONNREFUSED, true},
		{"host unreachable", syscall.EHOSTUNREACH, true},
		{"net unreachable", syscall.ENETUNREACH, true},
		{"protocol unreachable", syscall.ENOPROTOOPT, true},
		{"fragmentation needed", syscall.EMSGSIZE, true},
		{"prohibited", syscall.EACCES, true},
		{"parameter problem", syscall.EPROTO, true},
		{"reset", syscall.ECONNRESET, true},
		{"wrapped by net", &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("write", syscall.ECONNREFUSED)}, true},
		{"wrapped by fmt", fmt.Errorf("send: %w", syscall.EHOSTUNREACH), true},
		{"would block", syscall.EAGAIN, false},
		{"bad fd", syscall.EBADF, false},
		{"not an errno", errors.New("connection refused"), false},
		{"closed", net.ErrClosed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PendingErrno(tc.err); got != tc.want {
				t.Errorf("PendingErrno(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestWakeOnDone checks that a read blocked with no deadline returns when its context ends, and
// that once stop has run the next read is not cut short by the wake-up's deadline.
func TestWakeOnDone(t *testing.T) {
	c := listenUDP(t)
	ctx, cancel := context.WithCancel(context.Background())
	stop := WakeOnDone(ctx, c)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the read block; it must not return before cancel
	select {
	case err := <-errc:
		t.Fatalf("read returned %v before ctx ended", err)
	default:
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after cancel: %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still blocked 10s after its context ended")
	}
	stop()

	// The deadline is cleared: a later read under a live context gets its datagram.
	stop = WakeOnDone(context.Background(), c)
	defer stop()
	s := listenUDP(t)
	if _, err := s.WriteTo([]byte("hi"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read after stop: %v", err)
	}
	if diff := cmp.Diff("hi", string(buf[:n])); diff != "" {
		t.Errorf("read after stop (-want +got):\n%s", diff)
	}
}

// TestWakeOnDoneStopFirst checks that stop before ctx ends leaves no deadline behind.
func TestWakeOnDoneStopFirst(t *testing.T) {
	c := listenUDP(t)
	ctx, cancel := context.WithCancel(context.Background())
	stop := WakeOnDone(ctx, c)
	stop()
	cancel()
	s := listenUDP(t)
	if _, err := s.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadFrom(make([]byte, 8)); err != nil {
		t.Fatalf("read after stop and cancel: %v", err)
	}
}
