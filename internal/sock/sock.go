// Package sock holds the socket plumbing that the udpping, tcpping and icmpping transports
// share: waking a blocked read when a context ends, the errnos an ICMP error leaves pending on
// a socket, and (on Linux, in sock_linux.go) recvmsg without allocations, the walk over a
// read's control messages and the kernel's receive timestamps.
package sock

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// ALongTimeAgo is a deadline in the past: set as a read deadline, it wakes a blocked read at
// once, which is how a read is cut short when its context ends (package net does the same).
var ALongTimeAgo = time.Unix(1, 0)

// A ReadDeadliner is a socket whose reads can be cut short: *net.UDPConn, *os.File,
// net.PacketConn, net.Conn.
type ReadDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// WakeOnDone arranges for a read on c blocked in the runtime's poller to return (with
// os.ErrDeadlineExceeded) as soon as ctx is done, by setting ALongTimeAgo as c's read deadline.
// Call the returned stop when the read is over: if the wake-up fired, stop waits for it and
// clears the deadline again, so that it cannot cut short a later read under a live context.
// stop leaves no deadline set either way; c's reader must not rely on a deadline of its own
// across the call.
func WakeOnDone(ctx context.Context, c ReadDeadliner) (stop func()) {
	fired := make(chan struct{})
	stopFunc := context.AfterFunc(ctx, func() {
		_ = c.SetReadDeadline(ALongTimeAgo)
		close(fired)
	})
	return func() {
		if !stopFunc() {
			<-fired
			_ = c.SetReadDeadline(time.Time{})
		}
	}
}

// PendingErrno reports whether err is (or wraps) an errno that an ICMP error leaves pending on
// a socket: the next send or read on that socket returns it instead of doing its work, while
// the details of the error wait on the error queue (Linux, IP_RECVERR) or are lost. Such an
// errno belongs to an earlier datagram, not to the call that returned it, so the call is worth
// repeating (a few times: each try consumes one pending error).
//
// The list is the union of what Linux's icmp_err_convert and icmpv6_err_convert map ICMP
// errors to (unreachable net, host, protocol and port; fragmentation needed or packet too big;
// source route failed; host unknown or isolated; administratively prohibited, policy failure
// and reject route; time exceeded; parameter problem), plus EPERM, which a firewall's reject
// on the local host leaves the same way, and ECONNRESET, the word other systems use for a port
// unreachable on a UDP socket.
func PendingErrno(err error) bool {
	errno, ok := err.(syscall.Errno)
	if !ok && !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENOPROTOOPT,
		syscall.EMSGSIZE, syscall.EOPNOTSUPP, syscall.EHOSTDOWN, syscall.EPROTO,
		syscall.EACCES, syscall.EPERM, syscall.ECONNRESET:
		return true
	}
	return enonet != 0 && errno == enonet
}

// Capitalize returns s with its first letter in upper case, as iputils prints the strerror of
// an errno ("connection refused" → "Connection refused"). Only ASCII a-z is changed: errno
// strings are ASCII.
func Capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
