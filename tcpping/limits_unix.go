//go:build unix

package tcpping

import (
	"fmt"
	"syscall"
)

// fitFileLimit returns how many connections the open-file limit lets the server hold, keeping
// spare files for itself: want when the soft limit allows it or can be raised (towards the
// hard limit) to allow it, else less, with a warning that says why.
func fitFileLimit(want, spare int) (int, string) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return want, ""
	}
	need := uint64(want + spare)
	if lim.Cur >= need {
		return want, ""
	}
	raised := lim
	raised.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
		lim = raised
	}
	if lim.Cur >= need {
		return want, ""
	}
	fit := max(int(lim.Cur)-spare, 1)
	return fit, fmt.Sprintf("at most %d connections, not %d: the open-file limit is %d (raise it with ulimit -n)",
		fit, want, lim.Cur)
}
