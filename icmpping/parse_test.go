package icmpping

import (
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/icmperr"
)

// fixtureDir holds ICMP packets in hex, one per file, which the parser tests and the fuzz
// tests' seeds share.
const fixtureDir = "../testdata/icmp"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	s, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

var fixtureCookie = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}

func TestParseReply(t *testing.T) {
	tests := []struct {
		file    string
		v6      bool
		want    echo
		wantTTL int
	}{
		{"reply-v4.hex", false, echo{ID: 0x1234, Seq: 1, Cookie: fixtureCookie, HasCookie: true, SentNs: 1700000000123456789, Len: 64}, 64},
		{"reply-v6.hex", true, echo{ID: 0x1234, Seq: 2, Cookie: fixtureCookie, HasCookie: true, SentNs: 1700000000123456789, Len: 64}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, ttl, err := parseReply(fixture(t, tt.file), tt.v6)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseReply (-want +got):\n%s", diff)
			}
			if ttl != tt.wantTTL {
				t.Errorf("ttl = %d, want %d", ttl, tt.wantTTL)
			}
		})
	}
}

func TestParseReplyRejects(t *testing.T) {
	reply := fixture(t, "reply-v4.hex")
	tests := []struct {
		name string
		b    []byte
		v6   bool
	}{
		{"empty", nil, false},
		{"ip header only", reply[:20], false},
		{"bad ihl", append([]byte{0x4f}, reply[1:30]...), false},
		{"v4 reply read as v6", reply, true},
		{"error read as reply", fixture(t, "host-unreach-v4.hex"), true},
	}
	for _, tt := range tests {
		if _, _, err := parseReply(tt.b, tt.v6); err == nil {
			t.Errorf("%s: parseReply accepted it", tt.name)
		}
	}
}

func TestParseQuotedError(t *testing.T) {
	srv := netip.MustParseAddr("10.77.2.2")
	srv6 := netip.MustParseAddr("fd77:2::2")
	full := echo{ID: 0x1234, Cookie: fixtureCookie, HasCookie: true, SentNs: 1700000000123456789, Len: 64}
	with := func(e echo, seq uint16) echo { e.Seq = seq; return e }
	tests := []struct {
		file  string
		v6    bool
		want  quoted
		words string
	}{
		{"host-unreach-v4.hex", false, quoted{Err: icmperr.Error{Type: 3, Code: 1}, Echo: with(full, 7), Dst: srv}, "Destination Host Unreachable"},
		{"frag-needed-v4.hex", false, quoted{Err: icmperr.Error{Type: 3, Code: 4, Info: 1280}, Echo: echo{ID: 0x1234, Seq: 7, Len: 8}, Dst: srv}, "Frag needed and DF set (mtu = 1280)"},
		{"ttl-exceeded-v4.hex", false, quoted{Err: icmperr.Error{Type: 11}, Echo: with(echo{ID: 0x1234, Cookie: fixtureCookie, HasCookie: true, SentNs: 1700000000123456789, Len: 24}, 3), Dst: srv}, "Time to live exceeded"},
		{"redirect-v4.hex", false, quoted{Err: icmperr.Error{Type: 5, Code: 1, Gateway: netip.MustParseAddr("10.77.1.9")}, Echo: with(full, 7), Dst: srv}, "Redirect Host(New nexthop: 10.77.1.9)"},
		{"hop-limit-v6.hex", true, quoted{Err: icmperr.Error{V6: true, Type: 3}, Echo: with(full, 9), Dst: srv6}, "Time exceeded: Hop limit"},
		{"too-big-v6.hex", true, quoted{Err: icmperr.Error{V6: true, Type: 2, Info: 1280}, Echo: with(full, 9), Dst: srv6}, "Packet too big: mtu=1280"},
		{"admin-prohibited-v6.hex", true, quoted{Err: icmperr.Error{V6: true, Type: 1, Code: 1}, Echo: with(full, 9), Dst: srv6}, "Destination unreachable: Administratively prohibited"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseQuotedError(fixture(t, tt.file), tt.v6)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("parseQuotedError (-want +got):\n%s", diff)
			}
			if w := got.Err.Words(); w != tt.words {
				t.Errorf("words = %q, want %q", w, tt.words)
			}
		})
	}
}

func TestParseQuotedErrorRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		v6   bool
	}{
		{"empty", nil, false},
		{"udp probe quoted", fixture(t, "port-unreach-udp-v4.hex"), false},
		{"reply is no error", fixture(t, "reply-v6.hex"), true},
		{"v6 error read as v4", fixture(t, "hop-limit-v6.hex"), false},
		{"header only", fixture(t, "host-unreach-v4.hex")[:8], false},
		{"truncated quote", fixture(t, "hop-limit-v6.hex")[:30], true},
	}
	for _, tt := range tests {
		if q, err := parseQuotedError(tt.b, tt.v6); err == nil {
			t.Errorf("%s: parseQuotedError accepted it: %+v", tt.name, q)
		}
	}
}

func TestEngineSeq(t *testing.T) {
	tests := []struct {
		wire uint16
		last int
		want int
	}{
		{1, 1, 1},
		{1, 5, 1},
		{5, 5, 5},
		{6, 5, 0}, // not sent yet: would be 6-65536
		{65535, 65535, 65535},
		{0, 65536, 65536},
		{65535, 65536, 65535},
		{1, 65537, 65537},
		{65535, 65537, 65535},
		{3, 200000, 196611},
		{0, 0, 0},
	}
	for _, tt := range tests {
		if got := engineSeq(tt.wire, tt.last); got != tt.want {
			t.Errorf("engineSeq(%d, %d) = %d, want %d", tt.wire, tt.last, got, tt.want)
		}
		if tt.want > 0 && wireSeq(tt.want) != tt.wire {
			t.Errorf("wireSeq(%d) = %d, want %d", tt.want, wireSeq(tt.want), tt.wire)
		}
	}
}

func TestMarshalEchoRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		b := marshalEcho(nil, v6, 0xbeef, 42, 12345, fixtureCookie, 56, nil)
		if len(b) != 64 {
			t.Fatalf("len = %d, want 64", len(b))
		}
		if !v6 && checksum(b) != 0 {
			t.Errorf("checksum does not verify")
		}
		typ, _ := echoTypes(v6)
		got, err := parseEcho(b, typ)
		if err != nil {
			t.Fatal(err)
		}
		want := echo{ID: 0xbeef, Seq: 42, Cookie: fixtureCookie, HasCookie: true, SentNs: 12345, Len: 64}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("v6=%v (-want +got):\n%s", v6, diff)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	bad := []Config{
		{},
		{Target: lo, Size: -2},
		{Target: lo, Size: MaxSize4 + 1},
		{Target: netip.IPv6Loopback(), Size: MaxSize6 + 1},
		{Target: lo, TTL: 256},
		{Target: lo, TTL: -1},
	}
	for _, c := range bad {
		if err := c.check(); err == nil {
			t.Errorf("check(%+v) accepted it", c)
		}
	}
	good := Config{Target: netip.MustParseAddr("::ffff:127.0.0.1")}
	if err := good.check(); err != nil || good.Size != DefaultSize || !good.Target.Is4() {
		t.Errorf("check(%+v) = %v", good, err)
	}
}

func TestHeaderLine(t *testing.T) {
	tests := []struct {
		host string
		addr string
		size int
		want string
	}{
		{"127.0.0.1", "127.0.0.1", 56, "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data."},
		{"localhost", "127.0.0.1", 100, "PING localhost (127.0.0.1) 100(128) bytes of data."},
		{"::1", "::1", 56, "PING ::1(::1) 56 data bytes"},
	}
	for _, tt := range tests {
		if got := HeaderLine(tt.host, netip.MustParseAddr(tt.addr), tt.size); got != tt.want {
			t.Errorf("HeaderLine(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

func seedFixtures(f *testing.F) {
	names, err := filepath.Glob(filepath.Join(fixtureDir, "*.hex"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	for _, n := range names {
		b := fixture(f, filepath.Base(n))
		f.Add(b, false)
		f.Add(b, true)
	}
}

func FuzzParseReply(f *testing.F) {
	seedFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		e, _, err := parseReply(b, v6)
		if err == nil && (e.Len < 8 || e.Len > len(b)) {
			t.Errorf("length %d out of the packet's %d bytes", e.Len, len(b))
		}
	})
}

func FuzzParseQuotedError(f *testing.F) {
	seedFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		q, err := parseQuotedError(b, v6)
		if err != nil {
			return
		}
		if q.Err.V6 != v6 || q.Err.Words() == "" || !q.Dst.IsValid() {
			t.Errorf("accepted a quote it cannot describe: %+v", q)
		}
	})
}

func TestCheckInterval(t *testing.T) {
	tests := []struct {
		uid  int
		d    time.Duration
		want error
	}{
		{0, 0, nil},
		{0, time.Millisecond, nil},
		{1000, 0, ErrFlood},
		{1000, 1999 * time.Microsecond, ErrFlood},
		{1000, 2 * time.Millisecond, nil},
		{1000, time.Second, nil},
	}
	for _, tt := range tests {
		if got := CheckInterval(tt.uid, tt.d); got != tt.want {
			t.Errorf("CheckInterval(%d, %v) = %v, want %v", tt.uid, tt.d, got, tt.want)
		}
	}
}

// checksum is the Internet checksum (RFC 1071) of b, for checking what x/net/icmp marshalled:
// over a message with its checksum filled in, it is 0.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
