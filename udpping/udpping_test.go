package udpping

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAppendPing(t *testing.T) {
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
		{"longer seq never cut", 1000, MinSize, "ping 1000 2026-11-22 16:02:43.123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendPing(nil, tt.seq, at, tt.size))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AppendPing(%d, size %d) (-want +got):\n%s", tt.seq, tt.size, diff)
			}
		})
	}
	if got := len(AppendPing(nil, 3, at, MaxSize)); got != MaxSize {
		t.Errorf("AppendPing(size MaxSize) is %d bytes, want %d", got, MaxSize)
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
		{"ping 12x", 0, false},
		{"pong 1 x", 0, false},
		{"ping ", 0, false},
		{"", 0, false},
		{"\x00\xff\x80", 0, false},
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
// accepts is a ping message's start. Seeds come from testdata/udp/replies.txt.
func FuzzParseSeq(f *testing.F) {
	file, err := os.Open(filepath.Join("..", "testdata", "udp", "replies.txt"))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add([]byte(sc.Text()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, ok := ParseSeq(b)
		if !ok {
			return
		}
		if seq <= 0 || !strings.EqualFold(string(b[:5]), "ping ") {
			t.Errorf("ParseSeq(%q) = %d, true", b, seq)
		}
		back := AppendPing(nil, seq, time.Now(), 0)
		if got, _ := ParseSeq(back); got != seq {
			t.Errorf("ParseSeq(AppendPing(%d)) = %d", seq, got)
		}
	})
}

func TestUpper(t *testing.T) {
	in := []byte("ping 1 abc XYZ \x00\xff\xe9 z{`a")
	upper(in)
	if diff := cmp.Diff("PING 1 ABC XYZ \x00\xff\xe9 Z{`A", string(in)); diff != "" {
		t.Errorf("upper (-want +got):\n%s", diff)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		network, in string
		want        string
		wantErr     string
	}{
		{"udp", "127.0.0.1", "127.0.0.1:12000", ""},
		{"udp", "127.0.0.1:9", "127.0.0.1:9", ""},
		{"udp", "::1", "[::1]:12000", ""},
		{"udp", "[::1]", "[::1]:12000", ""},
		{"udp", "[::1]:7", "[::1]:7", ""},
		{"udp", "::1:12345", "", "written [ADDR]:PORT"},
		{"udp", "::ffff:127.0.0.1", "127.0.0.1:12000", ""},
		{"udp4", "localhost", "127.0.0.1:12000", ""},
		{"udp", "localhost:5", "127.0.0.1:5", ""},
		{"udp4", "::1", "", "not an IPv4 address"},
		{"udp6", "127.0.0.1", "", "not an IPv6 address"},
		{"udp", "127.0.0.1:0", "", `bad port "0"`},
		{"udp", "127.0.0.1:70000", "", `bad port "70000"`},
		{"udp", "127.0.0.1:http", "", `bad port "http"`},
		{"udp", "127.0.0.1:", "", "empty port"},
		{"udp", "[::1", "", "missing ']'"},
		{"udp", "[::1]x", "", "unexpected"},
		{"udp", ":12000", "", "missing host"},
		{"udp", "", "", "missing host"},
		// An invalid name fails in the resolver before any query leaves the machine.
		{"udp", "no..such..host", "", `cannot resolve "no..such..host"`},
		{"tcp", "127.0.0.1", "", "network must be udp, udp4 or udp6"},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.in, func(t *testing.T) {
			got, err := Resolve(context.Background(), tt.network, tt.in)
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
