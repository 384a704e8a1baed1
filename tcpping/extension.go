package tcpping

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
)

// pinglab's one-way extension over TCP: the same receipt as over UDP (pingmsg), written over
// the padding of a ping that asks for it. TCP never loses a ping on the way: a segment lost on
// one side of a link comes back as a retransmission, so over TCP the extension tells which way
// the delay (and its variation) was, and which way a ping timed out.

// OneWaySize is the smallest Size, and the default, of a client with Config.OneWay.
const OneWaySize = pingmsg.OneWaySize

// answer makes the echo of piece in place: upper-cased, with the receipt written over its
// padding when piece is a whole message (whole: it started and ended in this read) that asks
// for one. A message split across reads is echoed plainly: its ping then has no receipt.
func (s *Server) answer(piece []byte, whole bool, from netip.Addr) {
	if !whole {
		pingmsg.Upper(piece)
		return
	}
	msg := bytes.TrimRight(piece, "\r\n")
	req, ok := pingmsg.ParseOneWayRequest(msg)
	if !ok {
		pingmsg.Upper(piece)
		return
	}
	// The receipt is taken before any delay, so that a delayed echo shows on the way back.
	pingmsg.AnswerOneWay(msg, req, s.ledger.Record(from, req, time.Now()))
	pingmsg.Upper(piece[len(msg):])
}

var _ probe.OneWay = (*Client)(nil)

// message is ping seq's line, sent at now, with the one-way request when the run asks for it.
func (c *Client) message(seq int, now time.Time) []byte {
	if c.cfg.OneWay {
		return append(pingmsg.AppendOneWay(c.sbuf[:0], seq, now, c.id, c.size), '\n')
	}
	return AppendPing(c.sbuf[:0], seq, now, c.size)
}

// OneWay reports whether the pings ask for one-way receipts (Config.OneWay).
func (c *Client) OneWay() bool { return c.cfg.OneWay }

// AskStatus sends a status query of the one-way extension over a connection of its own; its
// receipt comes back from Receive as a Packet of kind probe.KindReceipt.
func (c *Client) AskStatus(ctx context.Context) error {
	if !c.cfg.OneWay {
		return nil
	}
	st, err := c.dial(ctx)
	if err != nil {
		return err
	}
	q := append(pingmsg.AppendOneWay(nil, 0, time.Now(), c.id, c.size), '\n')
	_ = st.c.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
	if _, err := st.c.Write(q); err != nil {
		_ = st.c.Close()
		return fmt.Errorf("tcpping: send status query: %w", err)
	}
	return nil
}

// receipt returns the one-way receipt of this run in an echo, or nil.
func (c *Client) receipt(line []byte) *pingmsg.Receipt {
	if !c.cfg.OneWay {
		return nil
	}
	r, ok := pingmsg.ParseReceipt(line)
	if !ok || r.ID != c.id {
		return nil
	}
	return &r
}

// status makes the Packet of the answer to a status query, or reports false for anything else.
func (c *Client) status(line []byte, at time.Time) (probe.Packet, bool) {
	if !c.cfg.OneWay || !pingmsg.ParseStatusSeq(line) {
		return probe.Packet{}, false
	}
	r := c.receipt(line)
	if r == nil {
		return probe.Packet{}, false
	}
	return probe.Packet{Kind: probe.KindReceipt, Time: at, From: c.from, Receipt: r}, true
}
