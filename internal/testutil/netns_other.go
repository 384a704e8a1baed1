//go:build !linux

package testutil

import (
	"net/http"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The namespace helpers exist on every system so that a test using them compiles everywhere;
// network namespaces are Linux's, so here each skips the test (or fails it under
// RequireRootEnv), and the functions taking a handle are never reached.

func noNetns(t testing.TB) {
	t.Helper()
	SkipOrFail(t, "network namespaces are Linux's, not %s's", runtime.GOOS)
}

// NewNetns skips the test: there are no network namespaces here.
func NewNetns(t testing.TB, name string) netns.NsHandle {
	noNetns(t)
	return netns.None()
}

// InNetns skips the test: there are no network namespaces here.
func InNetns(t testing.TB, h netns.NsHandle, fn func()) { noNetns(t) }

// WithNetlink skips the test: there are no network namespaces here.
func WithNetlink(t testing.TB, h netns.NsHandle, fn func(*netlink.Handle) error) { noNetns(t) }

// WithoutNetRaw skips the test: there are no network namespaces here.
func WithoutNetRaw(t testing.TB, h netns.NsHandle, fn func()) { noNetns(t) }

// NetnsHTTPClient returns the default client: there are no network namespaces here.
func NetnsHTTPClient(h netns.NsHandle) *http.Client { return http.DefaultClient }
