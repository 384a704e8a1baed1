package tcpping

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/testutil"
)

// TestConnectionUnreachable connects, inside a network namespace of its own with no route
// out, to addresses that have no route, an unreachable route and a prohibit route, and checks
// that each probe reports the ICMP words of its errno. No packet leaves the namespace.
func TestConnectionUnreachable(t *testing.T) {
	testutil.RequireRoot(t)
	tests := []struct {
		addr string
		want string
	}{
		{"10.1.2.3", "Destination Net Unreachable"},
		{"10.99.0.1", "Destination Host Unreachable"},
		{"10.98.0.1", "Destination Host Prohibited"},
		{"fd00:1::1", "Destination unreachable: No route"},
		{"fd00:99::1", "Destination unreachable: Address unreachable"},
	}
	type result struct {
		got   []string
		fatal string
	}
	done := make(chan result, 1)
	go func() {
		// The namespace belongs to this thread alone, and the thread never returns to the
		// runtime's pool: when the goroutine ends, the thread and its namespace end with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{fatal: "unshare: " + err.Error()}
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			// Up, lo gives IPv6 a source address (::1), without which connect fails sooner.
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			done <- result{fatal: "lo: " + err.Error()}
			return
		}
		for _, r := range []struct {
			dst string
			typ int
		}{{"10.99.0.0/16", unix.RTN_UNREACHABLE}, {"10.98.0.0/16", unix.RTN_PROHIBIT}, {"fd00:99::/32", unix.RTN_UNREACHABLE}} {
			_, dst, _ := net.ParseCIDR(r.dst)
			if err := netlink.RouteAdd(&netlink.Route{Dst: dst, Type: r.typ}); err != nil {
				done <- result{fatal: "route " + r.dst + ": " + err.Error()}
				return
			}
		}
		var res result
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, tt := range tests {
			cl, err := Dial(ctx, Config{Addr: net.JoinHostPort(tt.addr, "7"), Connect: ConnectPerPing})
			if err != nil {
				res.got = append(res.got, "Dial: "+err.Error())
				continue
			}
			// Send connects on this goroutine, so its socket is made inside the namespace.
			_, err = cl.Send(ctx, 1)
			cl.Close()
			var ie *icmperr.Error
			if errors.As(err, &ie) {
				res.got = append(res.got, ie.Words())
			} else {
				res.got = append(res.got, "not an *icmperr.Error: "+errString(err))
			}
		}
		done <- res
	}()
	res := <-done
	if res.fatal != "" {
		testutil.SkipOrFail(t, "cannot make a network namespace with routes: %s", res.fatal)
	}
	var want []string
	for _, tt := range tests {
		want = append(want, tt.want)
	}
	if diff := cmp.Diff(want, res.got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
