package testutil

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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
