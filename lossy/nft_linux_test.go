package lossy

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// batch runs queue against a fake netlink socket and returns the messages of the one batch the
// kernel would have received.
func batch(t *testing.T, queue func(c *nftables.Conn)) []netlink.Message {
	t.Helper()
	var got []netlink.Message
	sends := 0
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) > 0 { // nltest also calls with nothing for each Receive
			sends++
			got = append(got, req...)
		}
		return req, nil // each message acknowledged
	}))
	if err != nil {
		t.Fatal(err)
	}
	queue(c)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if sends != 1 {
		t.Errorf("%d sends, want one batch", sends)
	}
	return got
}

const (
	msgNewTable = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE
	msgDelTable = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELTABLE
	msgNewChain = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWCHAIN
	msgNewRule  = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE
)

var msgNames = map[netlink.HeaderType]string{
	unix.NFNL_MSG_BATCH_BEGIN: "begin", unix.NFNL_MSG_BATCH_END: "end",
	msgNewTable: "newtable", msgDelTable: "deltable", msgNewChain: "newchain", msgNewRule: "newrule",
}

func kinds(msgs []netlink.Message) []string {
	var k []string
	for _, m := range msgs {
		n, ok := msgNames[m.Header.Type]
		if !ok {
			n = "unknown"
		}
		k = append(k, n)
	}
	return k
}

// tableNameAttr is NFTA_*_TABLE / NFTA_TABLE_NAME (both type 1) holding "pinglab".
var tableNameAttr = func() []byte {
	b, _ := netlink.MarshalAttributes([]netlink.Attribute{{Type: 1, Data: []byte(TableName + "\x00")}})
	return b
}()

func TestBatchOnlyTouchesPinglab(t *testing.T) {
	from, _ := ParsePrefix("10.77.1.0/24")
	msgs := batch(t, func(c *nftables.Conn) {
		queueScenario(c, &Drop{Prob: 0.2, Proto: "udp", Port: 12000, From: from}, nil, nil)
	})
	want := []string{"begin", "newtable", "deltable", "newtable", "newchain", "newchain", "newrule", "newrule", "newrule", "end"}
	if diff := cmp.Diff(want, kinds(msgs)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
	for i, m := range msgs[1 : len(msgs)-1] {
		// Every message names the table right after the nfgenmsg header: a delete without a
		// name would be a ruleset flush.
		if !bytes.HasPrefix(m.Data[4:], tableNameAttr) {
			t.Errorf("message %d (%s) does not start with table %q: % x", i+1, msgNames[m.Header.Type], TableName, m.Data)
		}
		if m.Data[0] != unix.NFPROTO_INET {
			t.Errorf("message %d family %d, want inet", i+1, m.Data[0])
		}
	}
	clear := batch(t, queueClear)
	if diff := cmp.Diff([]string{"begin", "newtable", "deltable", "end"}, kinds(clear)); diff != "" {
		t.Errorf("clear batch (-want +got):\n%s", diff)
	}
}

func TestNumgenByteOrder(t *testing.T) {
	msgs := batch(t, func(c *nftables.Conn) { queueScenario(c, &Drop{Prob: 0.2}, nil, nil) })
	rule := msgs[len(msgs)-2]
	cmpAttrs := func(b []byte) []byte {
		data, _ := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_DATA_VALUE, Data: b}})
		a, _ := netlink.MarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_CMP_SREG, Data: binary.BigEndian.AppendUint32(nil, 1)},
			{Type: unix.NFTA_CMP_OP, Data: binary.BigEndian.AppendUint32(nil, unix.NFT_CMP_LT)},
			{Type: unix.NLA_F_NESTED | unix.NFTA_CMP_DATA, Data: data},
		})
		return a
	}
	host := cmpAttrs(binary.NativeEndian.AppendUint32(nil, 20))
	network := cmpAttrs(binary.BigEndian.AppendUint32(nil, 20))
	if !bytes.Contains(rule.Data, host) {
		t.Errorf("rule lacks `cmp lt reg 1 20` in host byte order (% x):\n% x", host, rule.Data)
	}
	if binary.NativeEndian.Uint32([]byte{0, 0, 0, 20}) != 20 && bytes.Contains(rule.Data, network) {
		t.Errorf("rule compares numgen in network byte order, which nft reads as %d", binary.NativeEndian.Uint32([]byte{0, 0, 0, 20}))
	}
	ng, _ := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_NG_DREG, Data: binary.BigEndian.AppendUint32(nil, 1)},
		{Type: unix.NFTA_NG_MODULUS, Data: binary.BigEndian.AppendUint32(nil, 100)},
		{Type: unix.NFTA_NG_TYPE, Data: binary.BigEndian.AppendUint32(nil, unix.NFT_NG_RANDOM)},
		{Type: unix.NFTA_NG_OFFSET, Data: binary.BigEndian.AppendUint32(nil, 0)},
	})
	if !bytes.Contains(rule.Data, ng) {
		t.Errorf("rule lacks `numgen random mod 100` into register 1:\n% x", rule.Data)
	}
	if !bytes.Contains(rule.Data, []byte("pinglab drop prob=0.2 dir=in\x00")) {
		t.Errorf("rule lacks its tag:\n% x", rule.Data)
	}
}

func TestRuleExprs(t *testing.T) {
	from6, _ := ParsePrefix("fd00:77:1::/64")
	for _, tc := range []struct {
		name string
		r    nftRule
		want []expr.Any
	}{
		{"reject host-unreachable", rules(nil, &Reject{With: HostUnreachable})[2].r(), []expr.Any{
			&expr.Counter{}, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_HOST_UNREACH}}},
		{"reject proto-unreachable is IPv4's", rules(nil, &Reject{With: ProtoUnreachable})[2].r(), []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Counter{}, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 2}}},
		{"tcp reset", rules(nil, &Reject{With: TCPReset, Port: 80})[2].r(), []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Register: 1, Data: []byte{0, 80}},
			&expr.Counter{}, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}},
		{"drop out to a v6 prefix", rules(&Drop{Prob: 1, Dir: "out", From: from6, Proto: "icmp"}, nil)[2].r(), []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: netip.MustParseAddr("ffff:ffff:ffff:ffff::").AsSlice(), Xor: make([]byte, 16)},
			&expr.Cmp{Register: 1, Data: netip.MustParseAddr("fd00:77:1::").AsSlice()},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 100)},
			&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.r.exprs()); diff != "" {
				t.Errorf("exprs (-want +got):\n%s", diff)
			}
		})
	}
}

// r lets a table entry name a rule inline.
func (r nftRule) r() nftRule { return r }
