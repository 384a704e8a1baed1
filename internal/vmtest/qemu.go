package vmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// A Machine is how QEMU boots the kernel.
type Machine struct {
	Kernel Kernel
	Initrd string
	// Accel is "kvm" or "tcg".
	Accel    string
	MemoryMB int
	CPUs     int
	// Console receives the kernel's own messages (the first serial port).
	Console string
	// Append is added to the kernel command line.
	Append string
}

func (m Machine) args() []string {
	cmdline := "console=ttyS0 panic=-1 loglevel=4 mitigations=off tsc=reliable clocksource=tsc " + m.Append
	a := []string{
		"-nodefaults", "-no-reboot", "-display", "none",
		"-m", strconv.Itoa(m.MemoryMB), "-smp", strconv.Itoa(m.CPUs),
		"-kernel", m.Kernel.Image(), "-initrd", m.Initrd, "-append", strings.TrimSpace(cmdline),
		"-serial", "file:" + m.Console, "-serial", "stdio",
	}
	if m.Accel == "kvm" {
		return append(a, "-accel", "kvm", "-cpu", "host")
	}
	// One host thread per virtual CPU: the guest's two CPUs then run at once.
	return append(a, "-accel", "tcg,thread=multi")
}

// Run boots the machine and hands what init prints on the second serial port to read, until
// the machine powers off, read returns, or ctx is done (then QEMU is killed).
func (m Machine) Run(ctx context.Context, read func(io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", m.args()...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vmtest: qemu: %w", err)
	}
	rerr := read(out)
	// Drain what the reader left, so QEMU never blocks on a full pipe while it shuts down.
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("vmtest: qemu killed: %w", ctx.Err())
	}
	if werr != nil {
		return fmt.Errorf("vmtest: qemu: %w: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return rerr
}

// ProbeKVM boots the image under KVM with init told to stop at once, and reports whether the
// kernel came up within the timeout. KVM can be present and still fail (a CPU model the host
// does not offer, a guest that hangs), so the only test is to try it, briefly.
func ProbeKVM(ctx context.Context, m Machine, timeout time.Duration) error {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m.Accel = "kvm"
	m.Append += " pinglab.probe"
	var kernel, done bool
	err := m.Run(ctx, func(r io.Reader) error {
		return Scan(r, func(e Event) {
			kernel = kernel || e.Kind == "kernel"
			done = done || e.Kind == "done"
		})
	})
	if err != nil {
		return err
	}
	if !kernel || !done {
		return errors.New("vmtest: kvm: the guest did not report")
	}
	return nil
}
