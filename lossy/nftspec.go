package lossy

import (
	"fmt"
	"net/netip"
	"strings"
)

// IP protocol numbers the rules match on.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// A verdict ends a rule.
type verdict int

const (
	verdictAccept verdict = iota
	verdictDrop
	verdictReject
)

// nftRule is one rule of pinglab's table, in a form that gives both the netlink expressions
// (nft_linux.go) and the nft command a student would type (Commands), so the two cannot drift.
type nftRule struct {
	chain   string // "input" or "output"
	nfproto int    // 0 any, 4 or 6
	l4      int    // IP protocol number, 0 any
	port    uint16 // 0 any
	dport   bool   // port is the destination port (else the source port)
	addr    netip.Prefix
	daddr   bool // addr is the destination (else the source)
	nd      bool // matches IPv6 neighbour discovery (ICMPv6 types 133 to 136)
	mod     uint32
	below   uint32 // numgen random mod `mod` < `below`, when mod > 0
	verdict verdict
	reject  rejectKind
	comment string
}

// rejectKind is how a reject answers: the NFT_REJECT_* type and its code.
type rejectKind struct {
	typ  uint32 // 0 icmp (family specific), 1 tcp reset, 2 icmpx
	code uint8
	text string // nft's words after "reject with"
}

// Values of NFT_REJECT_* and NFT_REJECT_ICMPX_* (linux/netfilter/nf_tables.h), spelled here so
// that the portable text needs no x/sys/unix.
const (
	rejectICMP  = 0
	rejectReset = 1
	rejectICMPX = 2
)

func rejectFor(with string) rejectKind {
	switch with {
	case NetUnreachable:
		return rejectKind{rejectICMPX, 0, "icmpx no-route"}
	case PortUnreachable:
		return rejectKind{rejectICMPX, 1, "icmpx port-unreachable"}
	case HostUnreachable:
		return rejectKind{rejectICMPX, 2, "icmpx host-unreachable"}
	case AdminProhibited:
		return rejectKind{rejectICMPX, 3, "icmpx admin-prohibited"}
	case ProtoUnreachable:
		return rejectKind{rejectICMP, 2, "icmp prot-unreachable"}
	case TCPReset:
		return rejectKind{rejectReset, 0, "tcp reset"}
	}
	return rejectKind{}
}

// protoMatches expands a protocol and port into the (family, protocol) pairs rules match.
func protoMatches(proto string, port uint16, from netip.Prefix) [][2]int {
	var m [][2]int
	switch {
	case proto == "udp":
		m = [][2]int{{0, protoUDP}}
	case proto == "tcp":
		m = [][2]int{{0, protoTCP}}
	case proto == "icmp":
		m = [][2]int{{4, protoICMP}, {6, protoICMPv6}}
	case port != 0:
		m = [][2]int{{0, protoUDP}, {0, protoTCP}}
	default:
		m = [][2]int{{0, 0}}
	}
	fam := 0
	if from.IsValid() {
		fam = 6
		if from.Addr().Is4() {
			fam = 4
		}
	}
	var out [][2]int
	for _, p := range m {
		switch {
		case fam == 0:
			out = append(out, p)
		case p[0] == 0 || p[0] == fam:
			out = append(out, [2]int{fam, p[1]})
		}
	}
	return out
}

// rules returns the rules of a scenario: in each chain, first an accept for neighbour discovery
// (so that dropping or rejecting "everything" does not cut IPv6 off its neighbours, which would
// turn loss into unreachability), then the scenario's rules.
func rules(d *Drop, r *Reject) []nftRule {
	var out []nftRule
	for _, chain := range []string{"input", "output"} {
		out = append(out, nftRule{chain: chain, nfproto: 6, l4: protoICMPv6, nd: true, verdict: verdictAccept,
			comment: ruleTag + " keep neighbour discovery"})
	}
	if d != nil {
		mod, below, _ := numgenBounds(d.Prob)
		chain, in := "input", d.dir() == "in"
		if !in {
			chain = "output"
		}
		for _, p := range protoMatches(d.Proto, d.Port, d.From) {
			out = append(out, nftRule{chain: chain, nfproto: p[0], l4: p[1], port: d.Port, dport: in,
				addr: d.From, daddr: !in, mod: mod, below: below, verdict: verdictDrop, comment: d.spec()})
		}
	}
	if r != nil {
		k := rejectFor(r.With)
		for _, p := range protoMatches(r.proto(), r.Port, r.From) {
			fam := p[0]
			if r.With == ProtoUnreachable {
				if fam == 6 {
					continue
				}
				fam = 4
			}
			out = append(out, nftRule{chain: "input", nfproto: fam, l4: p[1], port: r.Port, dport: true,
				addr: r.From, verdict: verdictReject, reject: k, comment: r.spec()})
		}
	}
	return out
}

var protoNames = map[int]string{protoICMP: "icmp", protoTCP: "tcp", protoUDP: "udp", protoICMPv6: "ipv6-icmp"}

// text is the rule as nft reads it.
func (r nftRule) text() string {
	var b []string
	switch {
	case r.nd:
		b = append(b, "icmpv6 type 133-136") // implies IPv6 and ICMPv6
	case r.addr.IsValid():
		f, dir := "ip", "saddr"
		if r.nfproto == 6 {
			f = "ip6"
		}
		if r.daddr {
			dir = "daddr"
		}
		b = append(b, f, dir, prefixString(r.addr))
	case r.nfproto == 4:
		b = append(b, "meta nfproto ipv4")
	case r.nfproto == 6:
		b = append(b, "meta nfproto ipv6")
	}
	if r.l4 != 0 && !r.nd {
		b = append(b, "meta l4proto", protoNames[r.l4])
	}
	if r.port != 0 {
		dir := "sport"
		if r.dport {
			dir = "dport"
		}
		b = append(b, fmt.Sprintf("th %s %d", dir, r.port))
	}
	if r.mod > 0 {
		b = append(b, fmt.Sprintf("numgen random mod %d < %d", r.mod, r.below))
	}
	b = append(b, "counter")
	switch r.verdict {
	case verdictAccept:
		b = append(b, "accept")
	case verdictDrop:
		b = append(b, "drop")
	case verdictReject:
		b = append(b, "reject with "+r.reject.text)
	}
	b = append(b, fmt.Sprintf("comment %q", r.comment))
	return strings.Join(b, " ")
}

func nftCommands(d *Drop, r *Reject) []string {
	c := []string{
		"nft add table inet " + TableName,
		"nft delete table inet " + TableName,
		"nft add table inet " + TableName,
		"nft add chain inet " + TableName + " input '{ type filter hook input priority filter; policy accept; }'",
		"nft add chain inet " + TableName + " output '{ type filter hook output priority filter; policy accept; }'",
	}
	for _, rl := range rules(d, r) {
		c = append(c, "nft add rule inet "+TableName+" "+rl.chain+" '"+rl.text()+"'")
	}
	return c
}
