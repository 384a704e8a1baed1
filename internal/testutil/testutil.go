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

// VMEnv is set to "1" inside internal/vmtest's VM. Its kernel is Debian's, which has every
// feature the tests use (netem among them), so there a test that would skip for a missing
// kernel feature fails instead.
const VMEnv = "PINGLAB_VM"

// InVM reports whether the test runs inside internal/vmtest's VM.
func InVM() bool { return os.Getenv(VMEnv) == "1" }

// SkipForKernel skips a test whose kernel lacks a feature (this machine's has no netem), or
// fails it inside the VM, whose kernel has it.
func SkipForKernel(t testing.TB, format string, args ...any) {
	t.Helper()
	if InVM() {
		t.Fatalf(format+" (inside the VM, whose kernel must have it)", args...)
	}
	t.Skipf(format, args...)
}

// HostOnly skips the test inside the VM, saying why it runs on the host only: a witness the VM
// does not carry, for something that does not depend on the kernel. Outside the VM it does
// nothing, so the test still runs (and may not skip) under RequireRootEnv.
func HostOnly(t testing.TB, why string) {
	t.Helper()
	if InVM() {
		t.Skip("host-only: " + why)
	}
}
