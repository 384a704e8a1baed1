package lossy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

var pinglabTable = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}

// exprs turns a rule into nftables expressions. Register 1 holds each loaded value in turn.
func (r nftRule) exprs() []expr.Any {
	var e []expr.Any
	cmp := func(op expr.CmpOp, b []byte) { e = append(e, &expr.Cmp{Op: op, Register: 1, Data: b}) }
	meta := func(k expr.MetaKey) { e = append(e, &expr.Meta{Key: k, Register: 1}) }
	switch r.nfproto {
	case 4:
		meta(expr.MetaKeyNFPROTO)
		cmp(expr.CmpOpEq, []byte{unix.NFPROTO_IPV4})
	case 6:
		meta(expr.MetaKeyNFPROTO)
		cmp(expr.CmpOpEq, []byte{unix.NFPROTO_IPV6})
	}
	if r.addr.IsValid() {
		off, n := uint32(12), uint32(4) // IPv4 saddr
		if r.nfproto == 6 {
			off, n = 8, 16
		}
		if r.daddr {
			off += n
		}
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
		if r.addr.Bits() < r.addr.Addr().BitLen() {
			e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n,
				Mask: prefixMask(r.addr.Bits(), int(n)), Xor: make([]byte, n)})
		}
		cmp(expr.CmpOpEq, r.addr.Masked().Addr().AsSlice())
	}
	if r.l4 != 0 {
		meta(expr.MetaKeyL4PROTO)
		cmp(expr.CmpOpEq, []byte{byte(r.l4)})
	}
	if r.nd {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{136}})
	}
	if r.port != 0 {
		off := uint32(0)
		if r.dport {
			off = 2
		}
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2})
		cmp(expr.CmpOpEq, binary.BigEndian.AppendUint16(nil, r.port))
	}
	if r.mod > 0 {
		// numgen writes a u32 in host byte order, so the bound is compared in host byte order
		// too (nft does the same: `< 20` is 0x14000000 in the rule on a little-endian machine).
		e = append(e, &expr.Numgen{Register: 1, Modulus: r.mod, Type: unix.NFT_NG_RANDOM})
		cmp(expr.CmpOpLt, binary.NativeEndian.AppendUint32(nil, r.below))
	}
	e = append(e, &expr.Counter{})
	switch r.verdict {
	case verdictAccept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case verdictDrop:
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case verdictReject:
		e = append(e, &expr.Reject{Type: r.reject.typ, Code: r.reject.code})
	}
	return e
}

func prefixMask(bits, n int) []byte {
	m := make([]byte, n)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// queueClear queues the removal of pinglab's table. Adding it first makes the delete succeed
// whether or not the table exists (`nft add table; nft delete table`), all in one batch.
func queueClear(c *nftables.Conn) {
	c.AddTable(pinglabTable)
	c.DelTable(pinglabTable)
}

// holderChain is the chain that carries a Holder's mark: a chain without a hook, which no
// packet ever passes.
const holderChain = "holder"

// queueMark queues the table with the holder's mark, the table only when h is nil.
func queueMark(c *nftables.Conn, h *Holder) *nftables.Table {
	t := c.AddTable(pinglabTable)
	if h != nil {
		ch := c.AddChain(&nftables.Chain{Name: holderChain, Table: t})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{&expr.Counter{}},
			UserData: userdata.AppendString(nil, userdata.TypeComment, h.tag())})
	}
	return t
}

// queueNetemMark queues a clear of the table and, for a held netem scenario, a table with the
// holder's mark only.
func queueNetemMark(c *nftables.Conn, h *Holder) {
	queueClear(c)
	if h != nil {
		queueMark(c, h)
	}
}

// queueScenario queues a clear followed by the table, chains and rules of the scenario, and
// the holder's mark.
func queueScenario(c *nftables.Conn, d *Drop, r *Reject, h *Holder) {
	queueClear(c)
	t := queueMark(c, h)
	policy := nftables.ChainPolicyAccept
	chains := map[string]*nftables.Chain{
		"input": c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy}),
		"output": c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &policy}),
	}
	for _, rl := range rules(d, r) {
		c.AddRule(&nftables.Rule{Table: t, Chain: chains[rl.chain], Exprs: rl.exprs(),
			UserData: userdata.AppendString(nil, userdata.TypeComment, rl.comment)})
	}
}

// nftFlush sends the queued batch, naming a missing privilege plainly.
func nftFlush(c *nftables.Conn) error {
	if err := c.Flush(); err != nil {
		return nftErr(err)
	}
	return nil
}

func nftErr(err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("lossy: nftables: %w", ErrPermission)
	}
	return fmt.Errorf("lossy: nftables: %w", err)
}

// holderRule returns the Holder whose mark the chain carries and its rule, or nil.
func holderRule(c *nftables.Conn, ch *nftables.Chain) (*Holder, *nftables.Rule, error) {
	rs, err := c.GetRules(pinglabTable, ch)
	if err != nil {
		return nil, nil, nftErr(err)
	}
	for _, r := range rs {
		tag, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		if h, ok := parseHolder(tag); ok {
			return h, r, nil
		}
	}
	return nil, nil, nil
}

// running reports whether a process pid exists.
func running(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// queueClearOwn queues the removal of pinglab's table if it still carries h's mark: the
// batch deletes h's rule first, so that it fails as a whole, changing nothing, when a newer
// scenario replaced the table. It reports false when the mark is gone already.
func queueClearOwn(c *nftables.Conn, h *Holder) (bool, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, nftErr(err)
	}
	for _, ch := range chains {
		if ch.Table.Name != TableName || ch.Name != holderChain {
			continue
		}
		got, r, err := holderRule(c, ch)
		if err != nil || got == nil || got.Gen != h.Gen {
			return false, err
		}
		if err := c.DelRule(r); err != nil {
			return false, nftErr(err)
		}
		c.DelTable(pinglabTable)
		return true, nil
	}
	return false, nil
}

// readRules reads the scenario back from the tags of pinglab's rules.
func readRules(c *nftables.Conn, s *State) error {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nftErr(err)
	}
	found := false
	for _, t := range tables {
		found = found || t.Name == TableName
	}
	if !found {
		return nil
	}
	s.Table = true
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nftErr(err)
	}
	seen := map[string]bool{}
	for _, ch := range chains {
		if ch.Table.Name != TableName {
			continue
		}
		if ch.Name == holderChain {
			if h, _, err := holderRule(c, ch); err != nil {
				return err
			} else if h != nil {
				h.Gone = !running(h.PID)
				s.Holder = h
			}
			continue
		}
		rs, err := c.GetRules(pinglabTable, ch)
		if err != nil {
			return nftErr(err)
		}
		for _, r := range rs {
			tag, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if seen[tag] || tag == ruleTag+" keep neighbour discovery" {
				continue
			}
			seen[tag] = true
			d, rj, err := parseSpec(tag)
			switch {
			case err != nil:
				s.Rules = append(s.Rules, tag)
			case d != nil:
				s.Drop = d
			default:
				s.Reject = rj
			}
		}
	}
	return nil
}
