package exporter

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	const yml = `# a lab
defaults:
  interval: 2s
  count: 3
targets:
  - target: 127.0.0.1
    protocol: icmp
    ttl: 64
    tos: 0xb8
  - target: "[::1]:12000"
    protocol: udp
    size: 100
    source: ::1
    timeout: 300ms
  - target: 127.0.0.1:22
    protocol: tcp-connect
    interface: lo
modules:
  tcp5:
    protocol: tcp
    count: 5
    connect: per-ping
`
	cfg, err := ParseConfig([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	base := Settings{Interval: 2 * time.Second, Count: 3, Spacing: DefaultSpacing, Timeout: time.Second}
	with := func(f func(*Settings)) Settings { s := base; f(&s); return s }
	want := &Config{
		Targets: []Target{
			{Addr: "127.0.0.1", Line: 6, Settings: with(func(s *Settings) { s.Protocol, s.TTL, s.TOS = ICMP, 64, 0xb8 })},
			{Addr: "[::1]:12000", Line: 10, Settings: with(func(s *Settings) {
				s.Protocol, s.Size, s.Source, s.Timeout = UDP, 100, netip.MustParseAddr("::1"), 300*time.Millisecond
			})},
			{Addr: "127.0.0.1:22", Line: 15, Settings: with(func(s *Settings) { s.Protocol, s.Interface = TCPConnect, "lo" })},
		},
		Modules: map[string]Settings{"tcp5": with(func(s *Settings) { s.Protocol, s.Count, s.Connect = TCP, 5, "per-ping" })},
	}
	if diff := cmp.Diff(want, cfg, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("ParseConfig (-want +got):\n%s", diff)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, yml, want string }{
		{"empty", "", "1: empty configuration"},
		{"not yaml", "targets: [\n", "1: did not find expected node content"},
		{"unknown top", "target:\n  - x\n", `1: unknown field "target"`},
		{"unknown field", "targets:\n  - target: 127.0.0.1\n    protocol: icmp\n    colour: red\n", `4: unknown field "colour"`},
		{"no protocol", "targets:\n  - target: 127.0.0.1\n", "2: target 127.0.0.1: no protocol"},
		{"bad protocol", "targets:\n  - target: x\n    protocol: sctp\n", `3: protocol: "sctp" is not one of`},
		{"no port", "targets:\n  - target: 127.0.0.1\n    protocol: udp\n", "2: target 127.0.0.1: udp needs host:port"},
		{"bad count", "targets:\n  - target: a:1\n    protocol: udp\n    count: 0\n", "4: count: 0 is outside 1..1000"},
		{"bad duration", "defaults:\n  interval: soon\n", `2: interval: "soon" is not a duration`},
		{"negative duration", "defaults:\n  timeout: -1s\n", `2: timeout: "-1s" is not above 0`},
		{"round too long", "targets:\n  - target: a:1\n    protocol: udp\n    interval: 1s\n    count: 5\n    spacing: 300ms\n    timeout: 1s\n",
			"2: target a:1: a round of 5 probes 300ms apart with a 1s timeout takes 2.2s, longer than its interval 1s"},
		{"duplicate", "targets:\n  - target: a:1\n    protocol: udp\n  - target: a:1\n    protocol: udp\n", "4: target a:1 over udp is already on line 2"},
		{"bad source", "targets:\n  - target: a\n    protocol: icmp\n    source: here\n", `4: source: "here" is not an IP address`},
		{"bad size", "targets:\n  - target: a:1\n    protocol: udp\n    size: 3\n", "2: target a:1: size: 3 is outside"},
		{"connect on udp", "targets:\n  - target: a:1\n    protocol: udp\n    connect: keep\n", "2: target a:1: connect: applies to protocol tcp only"},
		{"twice", "targets:\n  - target: a:1\n    protocol: udp\n    protocol: tcp\n", "4: protocol given twice"},
		{"nothing", "defaults:\n  count: 2\n", "1: no targets and no modules"},
		{"list expected", "targets: 3\n", "1: targets: want a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yml))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ParseConfig error = %v, want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pinglab.yml")
	if err := os.WriteFile(path, []byte("targets:\n  - target: 127.0.0.1\n    protocol: icmp\n    ttl: 300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if want := "exporter: " + path + ":4: ttl: 300 is outside 1..255"; err == nil || err.Error() != want {
		t.Errorf("LoadConfig error = %v, want %q", err, want)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "none.yml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("LoadConfig of a missing file: %v", err)
	}
}
