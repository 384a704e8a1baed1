package lossy

import (
	"errors"
	"flag"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/lossy")

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error // nil: valid
		v    interface{ Validate() error }
	}{
		{"drop 20%", nil, Drop{Prob: 0.2}},
		{"drop 12.5%", nil, Drop{Prob: 0.125, Proto: "udp", Port: 53, Dir: "out"}},
		{"drop 0.001%", nil, nil},
		{"drop over 100%", errShare, Drop{Prob: 1.2}},
		{"drop NaN", errShare, Drop{Prob: math.NaN()}},
		{"drop proto", errProto, Drop{Prob: 0.2, Proto: "sctp"}},
		{"drop icmp port", errPortNoProto, Drop{Prob: 0.2, Proto: "icmp", Port: 7}},
		{"drop dir", errDir, Drop{Prob: 0.2, Dir: "sideways"}},
		{"reject with", errWith, Reject{With: "icmp-host-unreachable"}},
		{"reject reset udp", errResetProto, Reject{With: TCPReset, Proto: "udp"}},
		{"reject port", nil, Reject{With: PortUnreachable, Proto: "udp", Port: 12000}},
		{"netem no dev", errNoDev, Netem{Loss: 0.2}},
		{"netem loss", errShare, Netem{Dev: "eth0", Loss: 2}},
		{"netem jitter", errJitter, Netem{Dev: "eth0", Delay: time.Millisecond, Jitter: time.Second}},
		{"netem reorder", errReorder, Netem{Dev: "eth0", Reorder: 0.1}},
		{"netem delay", errDelay, Netem{Dev: "eth0", Delay: time.Hour}},
		{"netem ok", nil, Netem{Dev: "eth0", Loss: 0.2, Delay: 100 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: 0.25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v == nil {
				return
			}
			err := tc.v.Validate()
			if (tc.err == nil) != (err == nil) || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Validate() = %v, want %v", err, tc.err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "lossy: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if err := (Drop{Prob: 0.00001}).Validate(); err == nil || !strings.Contains(err.Error(), "hundredth") {
		t.Errorf("drop 0.001%%: %v, want an error about hundredths of a percent", err)
	}
}

func TestParseRejectType(t *testing.T) {
	for in, want := range map[string]string{"host-unreachable": HostUnreachable, "icmp-host-unreachable": HostUnreachable,
		"icmp-port-unreachable": PortUnreachable, "icmp6-adm-prohibited": AdminProhibited, "icmp-admin-prohibited": AdminProhibited,
		"tcp-rst": TCPReset, "icmp-net-unreachable": NetUnreachable, "icmp-proto-unreachable": ProtoUnreachable, "icmp6-no-route": NetUnreachable} {
		if got, err := ParseRejectType(in); err != nil || got != want {
			t.Errorf("ParseRejectType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "icmp-", "host-prohibited", "drop"} {
		if _, err := ParseRejectType(bad); !errors.Is(err, errWith) {
			t.Errorf("ParseRejectType(%q) = %v, want errWith", bad, err)
		}
	}
}

func TestNumgenBounds(t *testing.T) {
	for _, tc := range []struct {
		p          float64
		mod, below uint32
	}{{0, 100, 0}, {0.2, 100, 20}, {1, 100, 100}, {0.07, 100, 7}, {0.125, 10000, 1250}, {0.0001, 10000, 1}} {
		mod, below, err := numgenBounds(tc.p)
		if err != nil || mod != tc.mod || below != tc.below {
			t.Errorf("numgenBounds(%v) = %d, %d, %v; want %d, %d", tc.p, mod, below, err, tc.mod, tc.below)
		}
	}
}

func TestRates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		out  string
	}{{"1mbit", 125000, "1mbit"}, {"100kbit", 12500, "100kbit"}, {"1.5Gbit", 187500000, "1.5gbit"}, {"500kbps", 500000, "4mbit"}, {"8bit", 1, "8bit"}} {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if s := FormatRate(got); s != tc.out {
			t.Errorf("FormatRate(%d) = %q, want %q", got, s, tc.out)
		}
	}
	for _, bad := range []string{"", "fast", "10", "-1mbit", "mbit", "1e400mbit"} {
		if _, err := ParseRate(bad); !errors.Is(err, errRate) {
			t.Errorf("ParseRate(%q) = %v, want errRate", bad, err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{"10.77.1.1": "10.77.1.1/32", "10.77.1.9/24": "10.77.1.0/24",
		"fd00:77:1::1": "fd00:77:1::1/128", "::ffff:10.0.0.1": "10.0.0.1/32"} {
		if got := mustPrefix(t, in); got.String() != want {
			t.Errorf("ParsePrefix(%q) = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "10.77.1", "host", "10.0.0.0/33"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q): no error", bad)
		}
	}
}

func TestSpecRoundTrip(t *testing.T) {
	from := mustPrefix(t, "fd00:77:1::/64")
	for _, d := range []Drop{{Prob: 0.2, Dir: "in"}, {Prob: 0.125, Proto: "udp", Port: 12000, From: from, Dir: "out"}, {Prob: 1, Proto: "icmp", Dir: "in"}} {
		got, _, err := parseSpec(d.spec())
		if err != nil || got == nil || *got != d {
			t.Errorf("parseSpec(%q) = %+v, %v; want %+v", d.spec(), got, err, d)
		}
	}
	for _, r := range []Reject{{With: HostUnreachable}, {With: TCPReset, Port: 80}, {With: AdminProhibited, Proto: "udp", Port: 53, From: from}} {
		_, got, err := parseSpec(r.spec())
		if err != nil || got == nil || *got != r {
			t.Errorf("parseSpec(%q) = %+v, %v; want %+v", r.spec(), got, err, r)
		}
	}
	for _, bad := range []string{"", "pinglab", "pinglab drop", "pinglab drop prob=2", "pinglab reject with=nope", "someone drop prob=0.2", "pinglab drop prob=0.2 port=99999", "pinglab drop prob=0.2 junk"} {
		if _, _, err := parseSpec(bad); !errors.Is(err, errSpec) {
			t.Errorf("parseSpec(%q) = %v, want errSpec", bad, err)
		}
	}
}

func TestNetnsPath(t *testing.T) {
	for in, want := range map[string]string{"": "", "pinglab-server": "/run/netns/pinglab-server", "/proc/1/ns/net": "/proc/1/ns/net"} {
		if got, err := netnsPath(in); err != nil || got != want {
			t.Errorf("netnsPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"..", "a b"} {
		if _, err := netnsPath(bad); !errors.Is(err, errNetns) {
			t.Errorf("netnsPath(%q) = %v, want errNetns", bad, err)
		}
	}
}

func TestLabPlan(t *testing.T) {
	if _, err := labPlan(4, DefaultLabPrefix); !errors.Is(err, errHosts) {
		t.Errorf("labPlan(4) = %v, want errHosts", err)
	}
	for _, hosts := range []int{2, 3} {
		l, err := labPlan(hosts, DefaultLabPrefix)
		if err != nil || len(l.Hosts) != hosts {
			t.Fatalf("labPlan(%d) = %+v, %v", hosts, l, err)
		}
		// Every link has a peer that links back, and every address is private.
		for _, h := range l.Hosts {
			if !strings.HasPrefix(h.Netns, "pinglab-") {
				t.Errorf("namespace %q", h.Netns)
			}
			for _, link := range h.Links {
				p, ok := l.Host(link.Peer)
				back := false
				for _, pl := range p.Links {
					back = back || pl.Peer == h.Name
				}
				if !ok || !back {
					t.Errorf("%s %s: peer %s does not link back", h.Name, link.Dev, link.Peer)
				}
				for _, a := range link.Addrs {
					if !a.Addr().IsPrivate() {
						t.Errorf("%s: %s is not a private address", h.Name, a)
					}
				}
			}
		}
		client, _ := l.Host(HostClient)
		server, _ := l.Host(HostServer)
		if !client.Addr(false).IsValid() || !server.Addr(true).IsValid() {
			t.Errorf("labPlan(%d): client or server lacks an address", hosts)
		}
	}
	for in, want := range map[string]string{"client": "client", "pinglab-router": "router", "server": "server"} {
		if got, err := labHostName(in, DefaultLabPrefix); err != nil || got != want {
			t.Errorf("labHostName(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := labHostName("laptop", DefaultLabPrefix); !errors.Is(err, errHost) {
		t.Errorf("labHostName(laptop) = %v, want errHost", err)
	}
}

// TestStateText checks what `pinglab lossy show` prints against testdata/lossy/*.golden.
func TestStateText(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    State
	}{
		{"empty", State{}},
		{"drop", State{Netns: "pinglab-server", Table: true, Drop: &Drop{Prob: 0.2, Proto: "udp", Port: 12000}}},
		{"drop-out-from", State{Table: true, Drop: &Drop{Prob: 0.125, Dir: "out", From: mustPrefix(t, "10.77.1.0/24")}}},
		{"reject-host", State{Netns: "pinglab-server", Table: true, Reject: &Reject{With: HostUnreachable}}},
		{"reject-proto", State{Table: true, Reject: &Reject{With: ProtoUnreachable, Proto: "udp", Port: 12000, From: mustPrefix(t, "10.77.1.1")}}},
		{"reject-reset", State{Table: true, Reject: &Reject{With: TCPReset, Port: 12000}}},
		{"netem", State{Netns: "pinglab-server", Netem: []Netem{{Dev: "eth0", Loss: 0.2, LossCorr: 0.25, Delay: 100 * time.Millisecond,
			Jitter: 10 * time.Millisecond, Duplicate: 0.01, Reorder: 0.05, Corrupt: 0.001, Rate: 125000}}}},
		{"unknown-rule", State{Table: true, Rules: []string{"pinglab someday"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(tc.s.Words(), "\n") + "\n--\n" + strings.Join(tc.s.Commands(), "\n") + "\n"
			path := filepath.Join("..", "testdata", "lossy", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64 // 0: an error
	}{
		{"1mbit", 125000}, {"100kbit", 12500}, {"500kbps", 500000}, {"1.5gbit", 187500000}, {"8bit", 1},
		{"1MBit", 125000}, {" 1mbit ", 125000},
		{"1bit", 0}, // an eighth of a byte per second would be 0, netem's "no limit"
		{"0mbit", 0}, {"-1mbit", 0}, {"mbit", 0}, {"1", 0}, {"", 0}, {"infmbit", 0}, {"nanmbit", 0},
	} {
		got, err := ParseRate(tc.in)
		if tc.want == 0 {
			if !errors.Is(err, errRate) {
				t.Errorf("ParseRate(%q) = %d, %v; want errRate", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
