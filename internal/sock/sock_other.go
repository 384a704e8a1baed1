//go:build !linux

package sock

import "syscall"

// enonet stands for Linux's ENONET (host isolated), which this system does not have: 0 is no
// errno a call returns.
const enonet = syscall.Errno(0)
