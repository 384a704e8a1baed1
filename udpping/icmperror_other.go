//go:build !linux

package udpping

import (
	"fmt"
	"net"
	"runtime"
)

// icmpSender needs Linux: the local address of each datagram (IP_PKTINFO) and raw sockets that
// take a source address per message.
type icmpSender struct{ oob []byte }

func openICMPSender(*net.UDPConn) (*icmpSender, error) {
	return nil, fmt.Errorf("udpping: sending ICMP errors is not supported on %s/%s (Linux only)", runtime.GOOS, runtime.GOARCH)
}

func (s *icmpSender) close() {}

func arrival([]byte, *datagram) (int, bool) { return 0, false }

func (s *icmpSender) send(ICMPErrorType, *datagram, int) error {
	return fmt.Errorf("udpping: sending ICMP errors is not supported on %s/%s", runtime.GOOS, runtime.GOARCH)
}
