package udpping

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// An echoBatch gathers replies and sends them with one sendmmsg (ipv4.PacketConn.WriteBatch,
// which works on IPv6 and dual-stack sockets too: Linux takes an IPv4 destination on an IPv6
// socket that is not v6-only). Each reply is counted before it is sent and taken back when
// sending it failed, as a single send does.
type echoBatch struct {
	pc    *ipv4.PacketConn
	count func(st *ClientStats, n int)
	msgs  []ipv4.Message
	addrs []net.UDPAddr // msgs[i].Addr points at addrs[i], so that adding allocates nothing
	ips   [][16]byte
	sts   []*ClientStats
	n     int
}

// newEchoBatch returns an echoBatch that sends up to size replies at once.
func newEchoBatch(pc *ipv4.PacketConn, count func(*ClientStats, int), size int) *echoBatch {
	b := &echoBatch{
		pc:    pc,
		count: count,
		msgs:  make([]ipv4.Message, size),
		addrs: make([]net.UDPAddr, size),
		ips:   make([][16]byte, size),
		sts:   make([]*ClientStats, size),
	}
	for i := range b.msgs {
		b.msgs[i].Buffers = make([][]byte, 1)
		b.msgs[i].Addr = &b.addrs[i]
	}
	return b
}

// add queues data (which must stay valid until flush) for to, sending the batch first when it
// is full.
func (b *echoBatch) add(data []byte, to netip.AddrPort, st *ClientStats) {
	if b.n == len(b.msgs) {
		b.flush()
	}
	i := b.n
	b.n++
	a := to.Addr()
	if a.Is4() || a.Is4In6() {
		ip4 := a.Unmap().As4()
		copy(b.ips[i][:4], ip4[:])
		b.addrs[i].IP = b.ips[i][:4]
	} else {
		b.ips[i] = a.As16()
		b.addrs[i].IP = b.ips[i][:]
	}
	b.addrs[i].Port = int(to.Port())
	b.addrs[i].Zone = a.Zone()
	b.msgs[i].Buffers[0] = data
	b.sts[i] = st
	// Counted before it is sent, so that the count never trails what the client saw.
	b.count(st, 1)
}

// flush sends what is queued. A reply that cannot be sent (its peer's error) is taken back
// from the count and skipped; the others still go.
func (b *echoBatch) flush() {
	for i := 0; i < b.n; {
		k, err := b.pc.WriteBatch(b.msgs[i:b.n], 0)
		i += max(k, 0)
		if (err != nil || k <= 0) && i < b.n {
			b.count(b.sts[i], -1)
			i++
		}
	}
	for i := range b.n {
		b.msgs[i].Buffers[0], b.sts[i] = nil, nil
	}
	b.n = 0
}
