//go:build unix

package tcpping

import (
	"net"
	"syscall"
)

// discardQueued reads and drops what the client sent that is queued on c, without waiting,
// so that closing c sends a FIN after our last words rather than a reset that could destroy
// them.
func discardQueued(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var buf [512]byte
	_ = rc.Control(func(fd uintptr) {
		for range 128 {
			n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_DONTWAIT)
			if n <= 0 || err != nil {
				return
			}
		}
	})
}
