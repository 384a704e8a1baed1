package udpping

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/pinglab/pinglab/internal/heartbeat"
	"github.com/pinglab/pinglab/internal/impair"
	"github.com/pinglab/pinglab/internal/pingmsg"
)

// DefaultListen is the server's address when none is given: port 12000 on every address,
// IPv4 and IPv6.
const DefaultListen = ":12000"

// ErrNeedRaw is what Listen's error wraps when ICMP errors are asked for and the raw socket to
// send them cannot be opened, for want of CAP_NET_RAW most often.
var ErrNeedRaw = errors.New("sending ICMP errors needs CAP_NET_RAW")

// reasonQueueFull is Message.Reason for a reply the delay queue shed (see delayQueue).
const reasonQueueFull = "delay queue full"

// ServerConfig configures a Server. The zero value listens on DefaultListen and echoes every
// datagram at once.
type ServerConfig struct {
	// Addr is the address to listen on, host:port; "" means DefaultListen.
	Addr string
	// Network is "udp" (IPv4 and IPv6 where Addr allows both), "udp4" or "udp6"; "" is "udp".
	Network string
	// Drop is the share of datagrams dropped at random, 0 to 1.
	Drop float64
	// ICMPError is the share of datagrams answered with an ICMP error instead of an echo, 0 to
	// 1, drawn among those not dropped: Drop 0.2 and ICMPError 0.5 drop 20% of the datagrams,
	// answer 40% (half the other 80%) with an error and echo 40%. The error is sent from a raw
	// socket (Linux only, CAP_NET_RAW), from the local address the datagram came to, and quotes
	// it as a router would, so that the client's kernel hands it to the client's socket.
	// Errors are sent at once, never delayed. Datagrams sent to a broadcast or multicast
	// address are never answered with an error (RFC 1122 3.2.2); they are echoed.
	ICMPError float64
	// ICMPErrorType is the error sent; 0 means HostUnreachable.
	ICMPErrorType ICMPErrorType
	// Delay holds each reply back this long; Jitter varies it uniformly by up to ± Jitter
	// (never below 0), as netem's delay does. Delayed replies never hold up other clients.
	Delay, Jitter time.Duration
	// Seed makes the drops, ICMP errors and jitter reproducible: the same seed and the same datagrams in the
	// same order give the same decisions. 0 picks a seed at random; Server.Seed tells which.
	Seed uint64
	// Log, when set, is called for each datagram with what the server did with it. It is
	// called from the read loop, so it should be quick; Message.Data is valid only during
	// the call.
	Log func(Message)
	// HeartbeatTimeout is how long a heartbeat client may stay silent before the server reports
	// it stopped; 0 means heartbeat.DefaultTimeout.
	HeartbeatTimeout time.Duration
	// Heartbeat, when set, is called with what the server notices of its heartbeat clients:
	// gaps, reordering, a client stopped or back. Calls never overlap; they come from the read
	// loop and from the check for silent clients, so they should be quick.
	Heartbeat func(heartbeat.Event)
}

// An Action is what the server did with a datagram.
type Action uint8

// The actions.
const (
	// Echoed: the datagram was echoed back (after Message.Delay, when there is one).
	Echoed Action = iota + 1
	// Dropped: the datagram was dropped (Message.Reason says why when not at random).
	Dropped
	// ICMPError: the datagram was answered with an ICMP error (Message.ICMPType) instead of an
	// echo; Message.Reason says why, when sending it failed.
	ICMPError
	// Heartbeat: the datagram was a heartbeat, taken in and not answered.
	Heartbeat
)

func (a Action) String() string {
	switch a {
	case Echoed:
		return "echoed"
	case Dropped:
		return "dropped"
	case ICMPError:
		return "icmp error"
	case Heartbeat:
		return "heartbeat"
	}
	return "unknown"
}

// A Message tells of one datagram the server received.
type Message struct {
	// Time is when it was read.
	Time time.Time
	// From is the client's address.
	From netip.AddrPort
	// Data is the datagram as received; valid only during the Log call.
	Data []byte
	// Action is what the server did with it.
	Action Action
	// Delay is how long the echo is held back.
	Delay time.Duration
	// ICMPType is the error sent, when Action is ICMPError.
	ICMPType ICMPErrorType
	// Reason says why a datagram was dropped other than at random ("delay queue full"), why
	// an ICMP error could not be sent, or why a datagram drawn for an error was echoed.
	Reason string
}

// ClientStats counts what one client sent and what became of it.
type ClientStats struct {
	// Addr is the client's address; the zero AddrPort stands for every client beyond the
	// table's bound.
	Addr netip.AddrPort
	// Received is how many datagrams came; Echoed how many were echoed back; Dropped how many
	// were dropped; Errors how many were answered with an ICMP error. Received - Echoed -
	// Dropped - Errors - Heartbeats are in flight (delayed) or failed to send.
	Received, Echoed, Dropped, Errors int
	// Heartbeats is how many datagrams were heartbeats (taken in, not answered).
	Heartbeats int
	// Shed is how many of Dropped were dropped because the delay queue was full, or the
	// client held its share of it: the load the server shed, not its random drops.
	Shed int
}

// A Server echoes each datagram back to its sender in upper case (the ASCII letters; other
// bytes unchanged), dropping and delaying as configured. Create one with Listen, run it with
// Serve.
type Server struct {
	conn    *net.UDPConn
	cfg     ServerConfig
	model   *impair.Model
	serving atomic.Bool
	closed  atomic.Bool

	mu      sync.Mutex
	clients map[netip.AddrPort]*ClientStats
	order   []*ClientStats

	delayed *delayQueue
	icmp    *icmpSender // nil unless cfg.ICMPError > 0
	echoes  *echoBatch  // the read loop's echoes waiting to be sent; nil: each sent at once

	ledger pingmsg.Ledger     // the one-way extension's receipts
	beats  *heartbeat.Tracker // the heartbeat clients
	beatMu sync.Mutex         // serializes cfg.Heartbeat's calls
}

// Listen opens the server's socket. A failure to bind says why (address in use, permission).
func Listen(ctx context.Context, cfg ServerConfig) (*Server, error) {
	model, err := impair.New(impair.Config{
		Drop: cfg.Drop, Error: cfg.ICMPError, Delay: cfg.Delay, Jitter: cfg.Jitter, Seed: cfg.Seed,
	})
	if err != nil {
		return nil, fmt.Errorf("udpping: %w", err)
	}
	if cfg.ICMPErrorType == 0 {
		cfg.ICMPErrorType = HostUnreachable
	}
	if !cfg.ICMPErrorType.valid() {
		return nil, fmt.Errorf("udpping: %w %d", errBadICMPErrorType, cfg.ICMPErrorType)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultListen
	}
	network := cfg.Network
	if network == "" {
		network = "udp"
	}
	if _, err := pingmsg.Family("udp", network); err != nil {
		return nil, fmt.Errorf("udpping: %w", err)
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("udpping: %w", impair.ListenError(cfg.Addr, err))
	}
	s := &Server{
		conn:    pc.(*net.UDPConn),
		cfg:     cfg,
		model:   model,
		clients: make(map[netip.AddrPort]*ClientStats),
		beats:   heartbeat.New(cfg.HeartbeatTimeout),
	}
	// A larger receive buffer rides out the moments the read loop is not scheduled (a busy
	// machine, a flood): the kernel's default (208 KiB) holds some 300 small datagrams, a few
	// milliseconds of a flood, and what does not fit is dropped before the server sees it,
	// whoever sent it. The kernel caps it at net.core.rmem_max; a failure leaves the default.
	_ = s.conn.SetReadBuffer(readBufferBytes)
	if cfg.ICMPError > 0 {
		// Checked here, before anything is served, so that a server without the privilege
		// says so at once rather than at its first error.
		if s.icmp, err = openICMPSender(s.conn); err != nil {
			s.conn.Close()
			return nil, err
		}
	}
	if model.Config().Delays() {
		s.delayed = newDelayQueue(s.conn, s.countEcho, cfg.Jitter == 0)
	}
	return s, nil
}

// Addr returns the address the server listens on, with the port the system picked for port 0.
func (s *Server) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Seed returns the seed of the server's drops and jitter, the one chosen when Config.Seed was 0.
func (s *Server) Seed() uint64 { return s.model.Seed() }

// Close closes the server's socket; Serve then returns nil. Delayed replies not yet sent are
// discarded.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.icmp != nil {
		s.icmp.close()
	}
	return s.conn.Close()
}

// Serve reads and echoes datagrams until ctx is done or Close is called, and then returns nil.
// It returns an error only when the socket fails for good. A Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	if s.serving.Swap(true) {
		return fmt.Errorf("udpping: %w", impair.ErrServing)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if s.delayed != nil {
		done := make(chan struct{})
		go func() { defer close(done); s.delayed.run() }()
		defer func() { s.delayed.stop(); <-done }()
	}
	checked := s.checkHeartbeats()
	defer checked()
	if s.icmp == nil {
		return s.serveBatches()
	}
	return s.serveOne()
}

// serveOne is Serve's read loop when the server sends ICMP errors: one datagram at a time,
// for the quote of an error needs each datagram's control messages.
func (s *Server) serveOne() error {
	// One buffer for the largest datagram either family carries, so nothing is ever cut.
	buf := make([]byte, 1<<16)
	failures := 0
	for {
		n, oobn, _, from, err := s.conn.ReadMsgUDPAddrPort(buf, s.icmp.oob)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// A read error on an unconnected UDP socket belongs to one datagram or one peer
			// (an ICMP error, a checksum failure): skip it, unless the socket keeps failing.
			failures++
			if failures > 100 {
				return fmt.Errorf("udpping: read: %w", err)
			}
			continue
		}
		failures = 0
		s.handle(buf[:n], from, s.icmp.oob[:oobn])
	}
}

// readBufferBytes is the receive buffer the server asks for (see Listen).
const readBufferBytes = 4 << 20

// readBatch is how many datagrams the read loop takes from the socket in one recvmmsg, and
// echoes in one sendmmsg: under load, a system call per 16 datagrams rather than two per one.
const readBatch = 16

// serveBatches is Serve's read loop when no ICMP errors are sent: recvmmsg and sendmmsg where the system has them (Linux), one datagram at
// a time elsewhere. The echoes of one read are sent together once every datagram of it was
// handled, so that they still leave in the order the datagrams came.
func (s *Server) serveBatches() error {
	pc := ipv4.NewPacketConn(s.conn)
	msgs := make([]ipv4.Message, readBatch)
	for i := range msgs {
		// Each slot holds the largest datagram either family carries, so nothing is cut.
		msgs[i].Buffers = [][]byte{make([]byte, 1<<16)}
	}
	s.echoes = newEchoBatch(pc, s.countEcho, readBatch)
	failures := 0
	// drained: the last read found one datagram, as when one client pings at a time; the
	// next wait is then in poll, not in a read that finds nothing first. Under load reads
	// find several, and go on reading without a poll in between.
	drained := false
	for {
		if drained {
			// Wait before reading rather than read in vain first: poll is level-triggered,
			// so what came meanwhile returns it at once.
			if err := s.waitReadable(); err != nil && (s.closed.Load() || errors.Is(err, net.ErrClosed)) {
				return nil
			}
		}
		n, err := pc.ReadBatch(msgs, readFlags)
		drained = err == nil && n == 1
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if wouldBlock(err) {
				if err := s.waitReadable(); err != nil && (s.closed.Load() || errors.Is(err, net.ErrClosed)) {
					return nil
				}
				continue
			}
			// As in serveOne: one datagram's or one peer's error, unless the socket keeps failing.
			failures++
			if failures > 100 {
				return fmt.Errorf("udpping: read: %w", err)
			}
			continue
		}
		failures = 0
		for i := range n {
			ua, ok := msgs[i].Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			s.handle(msgs[i].Buffers[0][:msgs[i].N], ua.AddrPort(), nil)
		}
		// The echoes point into msgs: they leave before the next read overwrites them.
		s.echoes.flush()
	}
}

// handle decides what becomes of one datagram; oob holds its control messages when the server
// sends ICMP errors. It runs on the read loop; the decisions draw on the seeded generator in the
// order datagrams arrive, which makes a seeded run reproducible. The draws, for each datagram:
// drop (when Drop > 0); if not dropped, ICMP error (when ICMPError > 0); if not an error, the
// jitter (when Jitter > 0).
func (s *Server) handle(data []byte, from netip.AddrPort, oob []byte) {
	key := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	m := Message{From: key, Action: Echoed}
	if s.cfg.Log != nil {
		m.Time = time.Now()
	}
	dec := s.model.Decide()
	m.Delay = dec.Delay
	if pingmsg.IsHeartbeat(data) && dec.Verdict != impair.Drop {
		s.heartbeat(data, key, m)
		return
	}
	switch dec.Verdict {
	case impair.Drop:
		m.Action = Dropped
	case impair.Error:
		m.Action, m.ICMPType = ICMPError, s.cfg.ICMPErrorType
		d := datagram{src: key, dst: netip.AddrPortFrom(netip.Addr{}, s.Addr().Port()), payload: data}
		if ifindex, ok := arrival(oob, &d); ok {
			// Counted before it is sent, so that the count never trails what the client saw.
			st := s.count(key, ICMPError)
			if err := s.icmp.send(m.ICMPType, &d, ifindex); err != nil {
				s.uncountError(st)
				m.Reason = err.Error()
			}
			s.log(m, data)
			return
		}
		// Not sent to one of our unicast addresses: answer as if the draw had said echo.
		m.Action, m.ICMPType, m.Reason = Echoed, 0, "no ICMP error: not sent to a unicast address of this host"
		m.Delay = s.model.Delay()
	}
	st := s.count(key, m.Action)
	if m.Action == Echoed && m.Delay > 0 {
		if !s.delayed.reserve(st, len(data)) {
			s.countShed(st)
			m.Action, m.Reason = Dropped, reasonQueueFull
			s.log(m, data)
			return
		}
		s.log(m, data)
		s.answer(data, key)
		s.delayed.push(time.Now().Add(m.Delay), from, data, st)
		return
	}
	s.log(m, data)
	if m.Action != Echoed {
		return
	}
	s.answer(data, key)
	if s.echoes != nil {
		s.echoes.add(data, from, st)
		return
	}
	// Counted before it is sent, so that the count never trails what the client saw.
	s.countEcho(st, 1)
	if _, err := s.conn.WriteToUDPAddrPort(data, from); err != nil {
		s.countEcho(st, -1)
	}
}

// count counts a datagram of key's, and a drop or an error when a says so.
func (s *Server) count(key netip.AddrPort, a Action) *ClientStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.clients[key]
	if st == nil {
		if len(s.clients) >= impair.MaxClients {
			key = netip.AddrPort{}
			st = s.clients[key]
		}
		if st == nil {
			st = &ClientStats{Addr: key}
			s.clients[key] = st
			s.order = append(s.order, st)
		}
	}
	st.Received++
	switch a {
	case Heartbeat:
		st.Heartbeats++
	case Dropped:
		st.Dropped++
	case ICMPError:
		st.Errors++
	}
	return st
}

func (s *Server) log(m Message, data []byte) {
	if s.cfg.Log != nil {
		m.Data = data
		s.cfg.Log(m)
	}
}

// countShed counts a reply shed by the delay queue.
func (s *Server) countShed(st *ClientStats) {
	s.mu.Lock()
	st.Dropped++
	st.Shed++
	s.mu.Unlock()
}

// uncountError takes back an error counted before it failed to send.
func (s *Server) uncountError(st *ClientStats) {
	s.mu.Lock()
	st.Errors--
	s.mu.Unlock()
}

// countEcho counts n echoes of st's client; -1 takes back one that failed to send.
func (s *Server) countEcho(st *ClientStats, n int) {
	s.mu.Lock()
	st.Echoed += n
	s.mu.Unlock()
}

// Stats returns a snapshot of the per-client counters, in the order clients first came.
func (s *Server) Stats() []ClientStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ClientStats, len(s.order))
	for i, st := range s.order {
		out[i] = *st
	}
	return out
}
