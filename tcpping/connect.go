package tcpping

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
)

// A Connector probes by connecting only, as blackbox_exporter's tcp_connect does: a probe's
// reply is its connection established, timed from the SYN to the handshake's end; its error is
// the connect's ("Connection refused", "Destination Host Unreachable"). It needs no echo
// server, any TCP listener answers, and it sends nothing over the connection, which it closes
// at once. It implements probe.Transport.
type Connector struct {
	c  *Client // for the address, the settings and the words of connect errors
	rx chan probe.Packet
	wg sync.WaitGroup
}

var _ probe.Transport = (*Connector)(nil)

// DialConnect resolves cfg.Addr and returns a Connector for it; cfg.Size and cfg.Connect do
// not apply. Each probe's connect waits up to cfg.Timeout.
func DialConnect(ctx context.Context, cfg Config) (*Connector, error) {
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Every connect in flight holds one slot until Receive takes its outcome, so the channel
	// bounds nothing the engine does not already bound with its timeout.
	return &Connector{c: c, rx: make(chan probe.Packet, 64)}, nil
}

// RemoteAddr returns the address probed.
func (k *Connector) RemoteAddr() string { return k.c.from }

// Close ends the connects in flight and waits for them.
func (k *Connector) Close() error {
	err := k.c.Close()
	k.wg.Wait()
	return err
}

// Send starts probe seq's connect and returns when it started; its outcome comes through
// Receive.
func (k *Connector) Send(ctx context.Context, seq int) (time.Time, error) {
	if err := k.c.life.Err(); err != nil {
		return time.Time{}, net.ErrClosed
	}
	start := time.Now()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		p := k.connect(seq, start)
		select {
		case k.rx <- p:
		case <-k.c.life.Done():
		}
	}()
	return start, nil
}

func (k *Connector) connect(seq int, start time.Time) probe.Packet {
	d := net.Dialer{Timeout: k.c.cfg.Timeout, Control: k.c.cfg.Socket.Control(nil)}
	if a := k.c.cfg.LocalAddr; a.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	network := "tcp4"
	if k.c.v6 {
		network = "tcp6"
	}
	nc, err := d.DialContext(k.c.life, network, k.c.from)
	at := time.Now()
	if err != nil {
		if k.c.life.Err() != nil {
			return probe.Packet{}
		}
		return probe.Packet{Seq: seq, Kind: probe.KindError, Time: at, From: k.c.from, Err: k.c.connErr(err)}
	}
	_ = nc.Close()
	return probe.Packet{Seq: seq, Kind: probe.KindReply, Time: at, From: k.c.from, Connect: at.Sub(start)}
}

// Receive returns the outcome of the next connect that ended.
func (k *Connector) Receive(ctx context.Context) (probe.Packet, error) {
	select {
	case p := <-k.rx:
		return p, nil
	case <-ctx.Done():
		return probe.Packet{}, ctx.Err()
	case <-k.c.life.Done():
		return probe.Packet{}, net.ErrClosed
	}
}
