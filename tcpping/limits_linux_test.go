package tcpping

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
)

// raiseNoFile raises RLIMIT_NOFILE to need file descriptors, or skips the test (fails it under
// PINGLAB_REQUIRE_ROOT_TESTS=1) where the hard limit does not allow that many.
func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	lim.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < need {
		testutil.SkipOrFail(t, "needs %d file descriptors, RLIMIT_NOFILE allows %d: %v", need, lim.Cur, err)
	}
}

// TestConnectionTimedOut connects to a listener whose accept queue is full, which drops SYNs,
// so the connect takes longer than the client's timeout.
func TestConnectionTimedOut(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*syscall.SockaddrInet4).Port))
	// The first connection fills the queue of one, never accepted.
	filler, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	got := runPings(t, Config{Addr: addr.String(), Connect: ConnectPerPing, Timeout: 200 * time.Millisecond},
		probe.Options{Count: 2, Timeout: 5 * time.Second})
	if diff := cmp.Diff(map[string]int{"Connection timed out": 2}, got.reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}
