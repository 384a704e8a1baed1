//go:build unix

package main

import (
	"os/exec"
	"syscall"
	"testing"
)

// asNobody makes cmd run as user and group nobody (65534), without the test's privileges.
func asNobody(_ testing.TB, cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}
