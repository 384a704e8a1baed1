package udpping

import (
	"net"
	"testing"

	"github.com/pinglab/pinglab/internal/probe"
)

// freePort returns a loopback port no one listens on (it was free a moment ago).
func freePort(t *testing.T, network, loopback string) string {
	t.Helper()
	pc, err := net.ListenPacket(network, net.JoinHostPort(loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort().String()
}

// TestConnPortUnreachable pings a port where no server listens: the kernel answers each ping
// with an ICMP port unreachable, which must come back as that probe's error, never a timeout.
func TestConnPortUnreachable(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			want := map[string]string{"udp4": "Destination Port Unreachable", "udp6": "Destination unreachable: Port unreachable"}[f.network]
			c := dial(t, Config{Addr: freePort(t, f.network, f.loopback), Network: f.network})
			const n = 10
			// Send them all first: the errnos they leave must not stop later sends.
			for seq := 1; seq <= n; seq++ {
				send(t, c, seq)
			}
			seen := map[int]bool{}
			for range n {
				p := receive(t, c)
				if p.Kind != probe.KindError || p.Err == nil || p.From != f.loopback {
					t.Fatalf("packet = %+v, want an ICMP error from %s", p, f.loopback)
				}
				if got := p.Err.Words(); got != want {
					t.Errorf("seq %d: %q, want %q", p.Seq, got, want)
				}
				if p.Time.IsZero() {
					t.Errorf("seq %d: no kernel timestamp", p.Seq)
				}
				seen[p.Seq] = true
			}
			if len(seen) != n {
				t.Errorf("errors for %d distinct probes, want %d", len(seen), n)
			}
			// Then one at a time, as the engine sends them.
			for seq := n + 1; seq <= n+5; seq++ {
				send(t, c, seq)
				if p := receive(t, c); p.Seq != seq || p.Kind != probe.KindError {
					t.Errorf("packet = %+v, want the error of seq %d", p, seq)
				}
			}
		})
	}
}
