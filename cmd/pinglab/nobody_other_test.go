//go:build !unix

package main

import (
	"os/exec"
	"runtime"
	"testing"
)

// asNobody skips the test: this system has no user ids to run a process as.
func asNobody(t testing.TB, _ *exec.Cmd) {
	t.Skipf("no user to switch to on %s", runtime.GOOS)
}
