//go:build !linux

package lossy

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"time"
)

var errUnsupported = errors.New("not supported")

// unsupported names the system, so that a student on macOS or Windows reads why.
func unsupported() error {
	return fmt.Errorf("lossy: %w on %s/%s (netem, nftables and network namespaces are Linux's)", errUnsupported, runtime.GOOS, runtime.GOARCH)
}

// CheckNetAdmin returns an error naming the system: lossy is Linux-only.
func CheckNetAdmin() error { return unsupported() }

// ApplyNetem returns an error naming the system: lossy is Linux-only.
func ApplyNetem(ctx context.Context, o Options, n Netem) error { return unsupported() }

// ApplyDrop returns an error naming the system: lossy is Linux-only.
func ApplyDrop(ctx context.Context, o Options, d Drop) error { return unsupported() }

// ApplyReject returns an error naming the system: lossy is Linux-only.
func ApplyReject(ctx context.Context, o Options, r Reject) error { return unsupported() }

// Clear returns an error naming the system: lossy is Linux-only.
func Clear(ctx context.Context, o Options) error { return unsupported() }

// Show returns an error naming the system: lossy is Linux-only.
func Show(ctx context.Context, o Options) (State, error) { return State{}, unsupported() }

// Hold returns an error naming the system: lossy is Linux-only.
func Hold(ctx context.Context, o Options, d time.Duration) error { return unsupported() }

// LabUp returns an error naming the system: lossy is Linux-only.
func LabUp(ctx context.Context, hosts int, opts ...LabOption) (LabInfo, error) {
	return LabInfo{}, unsupported()
}

// LabDown returns an error naming the system: lossy is Linux-only.
func LabDown(ctx context.Context, opts ...LabOption) error { return unsupported() }

// LabStatus returns an error naming the system: lossy is Linux-only.
func LabStatus(ctx context.Context, opts ...LabOption) (LabInfo, error) {
	return LabInfo{}, unsupported()
}

// StartIn returns an error naming the system: lossy is Linux-only.
func StartIn(namespace string, cmd *exec.Cmd) error { return unsupported() }

// LabExec returns an error naming the system: lossy is Linux-only.
func LabExec(ctx context.Context, host string, cmd *exec.Cmd, opts ...LabOption) error {
	return unsupported()
}
