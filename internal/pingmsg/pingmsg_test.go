package pingmsg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAppend(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 2, 43, 123456789, time.Local)
	tests := []struct {
		name string
		seq  int
		size int
		want string
	}{
		{"bare", 1, 0, "ping 1 2026-11-22 16:02:43.123456"},
		{"exact", 1, MinSize, "ping 1 2026-11-22 16:02:43.123456"},
		{"one over", 1, MinSize + 1, "ping 1 2026-11-22 16:02:43.123456 "},
		{"padded", 7, 40, "ping 7 2026-11-22 16:02:43.123456 abcdef"},
		{"pattern wraps", 3, 64, "ping 3 2026-11-22 16:02:43.123456 abcdefghijklmnopqrstuvwxyzabcd"},
		{"longer seq never cut", 1000, MinSize, "ping 1000 2026-11-22 16:02:43.123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Append(nil, tt.seq, at, tt.size))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Append(%d, size %d) (-want +got):\n%s", tt.seq, tt.size, diff)
			}
		})
	}
	if got := len(Append(nil, 3, at, 65507)); got != 65507 {
		t.Errorf("Append(size 65507) is %d bytes, want 65507", got)
	}
}

func TestParseSeq(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"ping 1 2026-11-22 16:02:43.123456", 1, true},
		{"PING 42 2026-11-22 16:02:43.123456 ABC", 42, true},
		{"Ping 7", 7, true},
		{"ping 7 ", 7, true},
		{"ping 0 x", 0, false},
		{"ping -1 x", 0, false},
		{"ping  1", 0, false},
		{"ping x", 0, false},
		{"ping 12x", 0, false},
		{"pong 1 x", 0, false},
		{"LOST", 0, false},
		{"ping ", 0, false},
		{"", 0, false},
		{"\x00\xff\x80", 0, false},
		{"\x00\xff\n", 0, false},
		{"ping 99999999999999999999999 x", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseSeq([]byte(tt.in))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseSeq(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzParseSeq checks that no reply, however mangled, crashes the parser, and that what it
// accepts is a ping message's start. Seeds are the replies in testdata/udp and testdata/tcp.
func FuzzParseSeq(f *testing.F) {
	for _, name := range []string{"udp", "tcp"} {
		file, err := os.Open(filepath.Join("..", "..", "testdata", name, "replies.txt"))
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			f.Add([]byte(sc.Text()))
		}
		file.Close()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, ok := ParseSeq(b)
		if !ok {
			return
		}
		if seq <= 0 || !strings.EqualFold(string(b[:5]), "ping ") {
			t.Errorf("ParseSeq(%q) = %d, true", b, seq)
		}
		back := Append(nil, seq, time.Now(), 0)
		if got, _ := ParseSeq(back); got != seq {
			t.Errorf("ParseSeq(Append(%d)) = %d", seq, got)
		}
	})
}

func TestUpper(t *testing.T) {
	in := []byte("ping 1 abc XYZ \x00\xff\xe9 z{`a")
	Upper(in)
	if diff := cmp.Diff("PING 1 ABC XYZ \x00\xff\xe9 Z{`A", string(in)); diff != "" {
		t.Errorf("Upper (-want +got):\n%s", diff)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		proto, network, in string
		want               string
		wantErr            string
	}{
		{"udp", "udp", "127.0.0.1", "127.0.0.1:12000", ""},
		{"udp", "", "127.0.0.1:9", "127.0.0.1:9", ""},
		{"udp", "udp", "::1", "[::1]:12000", ""},
		{"udp", "udp", "[::1]", "[::1]:12000", ""},
		{"udp", "udp", "[::1]:7", "[::1]:7", ""},
		{"udp", "udp", "::1:12345", "", "written [ADDR]:PORT"},
		{"udp", "udp", "::1:5000", "", "ambiguous address \"::1:5000\": did you mean [::1]:5000? (write [::1:5000] for the address alone)"},
		{"tcp", "tcp", "2001:db8::1:80", "", "did you mean [2001:db8::1]:80?"},
		{"udp", "udp", "[::1:5000]", "[::1:5000]:12000", ""},
		{"udp", "udp", "fe80::1", "[fe80::1]:12000", ""},
		{"udp", "udp", "::ffff:127.0.0.1", "127.0.0.1:12000", ""},
		{"udp", "udp4", "localhost", "127.0.0.1:12000", ""},
		{"udp", "udp", "localhost:5", "127.0.0.1:5", ""},
		{"udp", "udp4", "::1", "", "not an IPv4 address"},
		{"udp", "udp6", "127.0.0.1", "", "not an IPv6 address"},
		{"tcp", "tcp4", "::1", "", "not an IPv4 address"},
		{"tcp", "tcp6", "::1", "[::1]:12000", ""},
		{"udp", "udp", "127.0.0.1:0", "", `bad port "0"`},
		{"udp", "udp", "127.0.0.1:70000", "", `bad port "70000"`},
		{"udp", "udp", "127.0.0.1:http", "", `bad port "http"`},
		{"udp", "udp", "127.0.0.1:", "", "empty port"},
		{"udp", "udp", "[::1", "", "missing ']'"},
		{"udp", "udp", "[::1]x", "", "unexpected"},
		{"udp", "udp", ":12000", "", "missing host"},
		{"udp", "udp", "", "", "missing host"},
		// An invalid name fails in the resolver before any query leaves the machine.
		{"udp", "udp", "no..such..host", "", `cannot resolve "no..such..host"`},
		{"udp", "tcp", "127.0.0.1", "", "want udp, udp4 or udp6"},
		{"tcp", "udp4", "127.0.0.1", "", "want tcp, tcp4 or tcp6"},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.in, func(t *testing.T) {
			got, err := Resolve(context.Background(), tt.proto, tt.network, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(netip.MustParseAddrPort(tt.want), got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("Resolve(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestClientSize(t *testing.T) {
	tooLarge := errors.New("too large")
	for _, tc := range []struct {
		size, max int
		oneWay    bool
		want      int
		err       error
	}{
		{0, 1000, false, DefaultSize, nil},
		{0, 1000, true, OneWaySize, nil},
		{MinSize, 1000, false, MinSize, nil},
		{MinSize - 1, 1000, false, 0, ErrSizeSmall},
		{OneWaySize - 1, 1000, true, 0, ErrSizeOneWay},
		{OneWaySize, 1000, true, OneWaySize, nil},
		{1000, 1000, false, 1000, nil},
		{1001, 1000, false, 0, tooLarge},
		{-1, 1000, false, 0, ErrSizeSmall},
	} {
		got, err := ClientSize(tc.size, tc.max, tc.oneWay, tooLarge)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("ClientSize(%d, %d, %v) = %d, %v; want %d, %v", tc.size, tc.max, tc.oneWay, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.HasSuffix(err.Error(), fmt.Sprintf(", not %d", tc.size)) {
			t.Errorf("ClientSize(%d): %q does not name the size", tc.size, err)
		}
	}
}
