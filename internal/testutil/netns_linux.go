package testutil

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNetns creates the network namespace name (bound under /run/netns, so that "ip netns exec"
// reaches it) with its loopback up, and removes it when the test ends. It needs root; where
// namespaces cannot be made it skips, or fails under RequireRootEnv. Give every test binary's
// namespaces names of their own (with the pid), so that packages tested at once never meet.
func NewNetns(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		SkipOrFail(t, "no network namespaces here: %v", err)
	}
	defer orig.Close()
	_ = netns.DeleteNamed(name) // a leftover of a crashed run with this pid
	h, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// This thread is in the wrong namespace and must not run anything else.
		panic("testutil: cannot return to the original network namespace: " + serr.Error())
	}
	if err != nil {
		SkipOrFail(t, "cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() {
		h.Close()
		_ = netns.DeleteNamed(name)
	})
	WithNetlink(t, h, func(nh *netlink.Handle) error {
		lo, err := nh.LinkByName("lo")
		if err != nil {
			return err
		}
		return nh.LinkSetUp(lo)
	})
	return h
}

// InNetns runs fn on a locked thread inside the namespace h: the sockets fn opens and the
// processes it starts live there.
func InNetns(t testing.TB, h netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(h); err != nil {
		t.Fatalf("enter network namespace: %v", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("testutil: cannot return to the original network namespace: " + err.Error())
		}
	}()
	fn()
}

// WithNetlink calls fn with a netlink handle on the namespace h, and fails the test on its error.
func WithNetlink(t testing.TB, h netns.NsHandle, fn func(*netlink.Handle) error) {
	t.Helper()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	if err := fn(nh); err != nil {
		t.Fatalf("netlink: %v", err)
	}
}

// WithoutNetRaw runs fn on a thread inside the namespace h whose effective and permitted
// capabilities lack CAP_NET_RAW, as an unprivileged program's would, and waits for it. The
// thread is never handed back to the runtime: it ends with fn's goroutine, and its namespace
// and lowered capabilities with it (threads Go starts later come from its template thread, not
// from this one). fn runs on another goroutine, so it must report failures with t.Error, not
// t.Fatal.
func WithoutNetRaw(t testing.TB, h netns.NsHandle, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- fmt.Errorf("capget: %w", err)
			return
		}
		data[unix.CAP_NET_RAW/32].Effective &^= 1 << (unix.CAP_NET_RAW % 32)
		data[unix.CAP_NET_RAW/32].Permitted &^= 1 << (unix.CAP_NET_RAW % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- fmt.Errorf("capset: %w", err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// NetnsHTTPClient returns an HTTP client whose connections are made inside the namespace h, so
// that a test reaches a server listening on that namespace's loopback.
func NetnsHTTPClient(h netns.NsHandle) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			return nil, err
		}
		defer func() {
			if err := netns.Set(orig); err != nil {
				panic("testutil: cannot return to the original network namespace: " + err.Error())
			}
		}()
		// The socket is made on this thread, in h, and stays there.
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: time.Minute}
}
