package udpping

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

func TestParseICMPErrorType(t *testing.T) {
	for _, name := range ICMPErrorTypes() {
		typ, err := ParseICMPErrorType(name)
		if err != nil || typ.String() != name {
			t.Errorf("ParseICMPErrorType(%q) = %v, %v; want it back", name, typ, err)
		}
	}
	want := []string{"host-unreachable", "net-unreachable", "port-unreachable", "proto-unreachable", "admin-prohibited"}
	if diff := cmp.Diff(want, ICMPErrorTypes()); diff != "" {
		t.Errorf("ICMPErrorTypes() (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "host", "Host-Unreachable", "host-unreachable "} {
		_, err := ParseICMPErrorType(bad)
		if err == nil || !strings.Contains(err.Error(), "choose host-unreachable, net-unreachable, port-unreachable, proto-unreachable, admin-prohibited") {
			t.Errorf("ParseICMPErrorType(%q): %v; want an error listing the choices", bad, err)
		}
	}
}

// TestICMPErrorWords pins each type to its ICMP type and code, and the words a client prints.
func TestICMPErrorWords(t *testing.T) {
	type tcw struct {
		typ, code int
		words     string
	}
	tests := []struct {
		t      ICMPErrorType
		v4, v6 tcw
	}{
		{HostUnreachable, tcw{3, 1, "Destination Host Unreachable"}, tcw{1, 3, "Destination unreachable: Address unreachable"}},
		{NetUnreachable, tcw{3, 0, "Destination Net Unreachable"}, tcw{1, 0, "Destination unreachable: No route"}},
		{PortUnreachable, tcw{3, 3, "Destination Port Unreachable"}, tcw{1, 4, "Destination unreachable: Port unreachable"}},
		{ProtoUnreachable, tcw{3, 2, "Destination Protocol Unreachable"}, tcw{4, 1, "Parameter problem: Unknown header at 6"}},
		{AdminProhibited, tcw{3, 13, "Packet filtered"}, tcw{1, 1, "Destination unreachable: Administratively prohibited"}},
	}
	for _, tt := range tests {
		for v6, want := range map[bool]tcw{false: tt.v4, true: tt.v6} {
			e := tt.t.Error(v6)
			if got := (tcw{e.Type, e.Code, e.Words()}); got != want {
				t.Errorf("%v v6=%v: %+v, want %+v", tt.t, v6, got, want)
			}
		}
	}
	if ICMPErrorType(0).Error(false) != nil || ICMPErrorType(9).String() != "ICMPErrorType(9)" {
		t.Error("an unknown type must give no error and name its number")
	}
}

// ones is an independent check of an Internet checksum: the words of a block that carries its
// right checksum add up, in one's complement, to 0xffff.
func ones(blocks ...[]byte) uint16 {
	var s uint32
	for _, b := range blocks {
		if len(b)%2 == 1 {
			b = append(bytes.Clone(b), 0)
		}
		for i := 0; i < len(b); i += 2 {
			s += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// testTime is the send time written in the test pings.
var testTime = time.Date(2026, 11, 22, 16, 2, 43, 123456000, time.UTC)

func TestAppendICMPError4(t *testing.T) {
	client := netip.MustParseAddrPort("10.1.2.3:54321")
	server := netip.MustParseAddrPort("10.9.8.7:12000")
	for _, size := range []int{0, 1, 40, 519, 520, 521, 1000, MaxSize} {
		payload := pingmsg.Append(nil, 7, testTime, size)
		d := &datagram{src: client, dst: server, ttl: 63, tos: 0x10, payload: payload}
		msg := appendICMPError([]byte("junk"), PortUnreachable, d)[len("junk"):]
		if ones(msg) != 0xffff {
			t.Errorf("size %d: ICMP checksum wrong", size)
		}
		if len(msg) > 576-20 {
			t.Errorf("size %d: %d-byte ICMP message, more than fits in 576", size, len(msg))
		}
		if diff := cmp.Diff([]byte{3, 3}, msg[:2]); diff != "" || !bytes.Equal(msg[4:8], []byte{0, 0, 0, 0}) {
			t.Errorf("size %d: ICMP header % x, want type 3 code 3 and 4 zero bytes", size, msg[:8])
		}
		quote := msg[8:]
		h, err := ipv4.ParseHeader(quote)
		if err != nil {
			t.Fatalf("size %d: quoted header: %v", size, err)
		}
		got := [...]any{h.Version, h.Len, h.TOS, h.TotalLen, h.Flags, h.TTL, h.Protocol, h.Src.String(), h.Dst.String()}
		want := [...]any{4, 20, 0x10, 20 + 8 + len(payload), ipv4.DontFragment, 63, 17, "10.1.2.3", "10.9.8.7"}
		if got != want {
			t.Errorf("size %d: quoted header %v, want %v", size, got, want)
		}
		if ones(quote[:20]) != 0xffff {
			t.Errorf("size %d: quoted IP header checksum wrong", size)
		}
		udp := quote[20:]
		if diff := cmp.Diff([]uint16{54321, 12000, uint16(8 + len(payload))},
			[]uint16{binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:]), binary.BigEndian.Uint16(udp[4:])}); diff != "" {
			t.Errorf("size %d: UDP ports and length (-want +got):\n%s", size, diff)
		}
		// The UDP checksum covers the whole datagram, quoted or not, and the pseudo-header.
		pseudo := append(append([]byte{}, quote[12:20]...), 0, 17, byte((8+len(payload))>>8), byte(8+len(payload)))
		if ones(pseudo, udp[:8], payload) != 0xffff {
			t.Errorf("size %d: UDP checksum wrong", size)
		}
		wantQuoted := min(len(payload), 576-20-8-20-8)
		if !bytes.Equal(udp[8:], payload[:wantQuoted]) {
			t.Errorf("size %d: quoted %d bytes of payload, want the first %d", size, len(udp)-8, wantQuoted)
		}
	}
}

func TestAppendICMPError6(t *testing.T) {
	client := netip.MustParseAddrPort("[fd00::1]:54321")
	server := netip.MustParseAddrPort("[fd00::2]:12000")
	for _, tt := range []struct {
		t         ICMPErrorType
		head      []byte
		sizeRange []int
	}{
		{HostUnreachable, []byte{1, 3, 0, 0, 0, 0, 0, 0}, []int{0, 40, 1000}},
		{ProtoUnreachable, []byte{4, 1, 0, 0, 0, 0, 0, 6}, []int{1183, 1184, 1185, MaxSize}},
	} {
		for _, size := range tt.sizeRange {
			payload := pingmsg.Append(nil, 7, testTime, size)
			d := &datagram{src: client, dst: server, ttl: 64, tos: 0xb8, payload: payload}
			msg := appendICMPError(nil, tt.t, d)
			if len(msg) > 1280-40 {
				t.Errorf("%v size %d: %d-byte ICMPv6 message, more than fits in 1280", tt.t, size, len(msg))
			}
			if diff := cmp.Diff(tt.head, msg[:8]); diff != "" {
				t.Errorf("%v size %d: ICMPv6 header (-want +got):\n%s", tt.t, size, diff)
			}
			quote := msg[8:]
			h, err := ipv6.ParseHeader(quote)
			if err != nil {
				t.Fatalf("size %d: quoted header: %v", size, err)
			}
			got := [...]any{h.Version, h.TrafficClass, h.FlowLabel, h.PayloadLen, h.NextHeader, h.HopLimit, h.Src.String(), h.Dst.String()}
			want := [...]any{6, 0xb8, 0, 8 + len(payload), 17, 64, "fd00::1", "fd00::2"}
			if got != want {
				t.Errorf("size %d: quoted header %v, want %v", size, got, want)
			}
			udp := quote[40:]
			pseudo := append(append([]byte{}, quote[8:40]...), 0, 0, byte((8+len(payload))>>8), byte(8+len(payload)), 0, 0, 0, 17)
			if ones(pseudo, udp[:8], payload) != 0xffff {
				t.Errorf("size %d: UDP checksum wrong", size)
			}
			if n := binary.BigEndian.Uint16(udp[4:]); int(n) != 8+len(payload) {
				t.Errorf("size %d: UDP length %d", size, n)
			}
			wantQuoted := min(len(payload), 1280-40-8-40-8)
			if !bytes.Equal(udp[8:], payload[:wantQuoted]) {
				t.Errorf("size %d: quoted %d bytes of payload, want the first %d", size, len(udp)-8, wantQuoted)
			}
		}
	}
}

// TestChecksumZero checks that a UDP checksum that comes out 0 is sent as 0xffff (RFC 768).
func TestChecksumZero(t *testing.T) {
	// Find a payload whose UDP checksum is 0: the last two bytes make up the difference.
	d := &datagram{src: netip.MustParseAddrPort("10.0.0.1:1"), dst: netip.MustParseAddrPort("10.0.0.2:2"), payload: []byte{0, 0}}
	msg := appendQuote4(nil, d, 576)
	c := binary.BigEndian.Uint16(msg[26:])
	// Adding c to the payload's words makes the sum 0xffff, so the checksum becomes 0.
	binary.BigEndian.PutUint16(d.payload, c)
	msg = appendQuote4(nil, d, 576)
	if got := binary.BigEndian.Uint16(msg[26:]); got != 0xffff {
		t.Errorf("checksum %#04x, want 0xffff for a sum of 0", got)
	}
}

// TestICMPErrorConfig checks the configuration Listen refuses.
func TestICMPErrorConfig(t *testing.T) {
	for _, cfg := range []ServerConfig{
		{Addr: "127.0.0.1:0", ICMPError: -0.1},
		{Addr: "127.0.0.1:0", ICMPError: 1.5},
		{Addr: "127.0.0.1:0", ICMPError: 0.5, ICMPErrorType: 99},
	} {
		if s, err := Listen(context.Background(), cfg); err == nil {
			s.Close()
			t.Errorf("Listen(%+v) succeeded", cfg)
		}
	}
}
