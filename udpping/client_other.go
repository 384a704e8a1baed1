//go:build !linux

package udpping

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/sock"
)

// controlSocket has nothing to set outside Linux: there is no error queue to ask for, so ICMP
// errors show as timeouts, and replies are timed when read.
func controlSocket(string, string, syscall.RawConn) error { return nil }

type recvState struct {
	conn *net.UDPConn
	buf  []byte
}

func (r *recvState) init(conn *net.UDPConn) error {
	r.conn = conn
	r.buf = make([]byte, 1<<16)
	return nil
}

// Receive returns the next echo of one of our pings. Datagrams that are not echoes of our
// pings are skipped, and so are the bare errnos (connection refused, reset) that an ICMP error
// leaves on a connected socket here: without Linux's error queue they cannot be told apart by
// probe. It returns ctx.Err() soon after ctx is done.
func (c *Conn) Receive(ctx context.Context) (probe.Packet, error) {
	r := &c.sys
	if err := ctx.Err(); err != nil {
		return probe.Packet{}, err
	}
	defer sock.WakeOnDone(ctx, r.conn)()
	for {
		n, err := r.conn.Read(r.buf)
		if ctx.Err() != nil {
			return probe.Packet{}, ctx.Err()
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return probe.Packet{}, fmt.Errorf("udpping: receive: %w", err)
			}
			continue
		}
		if p, ok := c.reply(r.buf[:n], time.Now()); ok {
			return p, nil
		}
	}
}
