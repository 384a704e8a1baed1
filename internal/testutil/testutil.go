// Package testutil holds what pinglab's tests share: the rule for tests that need root or a
// kernel feature, which skip with their reason on a developer's machine and fail under
// PINGLAB_REQUIRE_ROOT_TESTS=1, as CI sets it.
package testutil

import (
	"os"
	"testing"
)

// RequireRootEnv is the variable CI sets so that a root-only test that cannot run fails.
const RequireRootEnv = "PINGLAB_REQUIRE_ROOT_TESTS"

// SkipOrFail skips the test with the reason, or fails it when RequireRootEnv is "1".
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireRootEnv) == "1" {
		t.Fatalf(format+" (and "+RequireRootEnv+"=1 forbids skipping)", args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot calls SkipOrFail unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root (euid is %d)", os.Geteuid())
	}
}
