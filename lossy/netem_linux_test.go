package lossy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

// TestNetemQdisc checks the raw fields of the qdisc pinglab asks netlink.QdiscReplace for: the
// numbers tc puts in its RTM_NEWQDISC for the same command (tc -d qdisc show prints them back),
// with the handle 7067: at the root of the interface.
func TestNetemQdisc(t *testing.T) {
	const tick = 15.625 // ticks per microsecond: /proc/net/psched 000003e8 00000040 on a 1 GHz clock
	attrs := netlink.QdiscAttrs{LinkIndex: 7, Handle: 0x70670000, Parent: 0xffffffff}
	for _, tc := range []struct {
		name string
		n    Netem
		want *netlink.Netem
	}{
		{"loss 20%", Netem{Dev: "eth0", Loss: 0.2},
			&netlink.Netem{QdiscAttrs: attrs, Limit: 1000, Loss: 858993459}},
		{"everything", Netem{Dev: "eth0", Loss: 0.2, LossCorr: 0.25, Delay: 100 * time.Millisecond, Jitter: 10 * time.Millisecond,
			Duplicate: 0.01, Reorder: 0.05, Corrupt: 0.001, Rate: 125000},
			&netlink.Netem{QdiscAttrs: attrs, Latency: 1562500, Limit: 1000, Loss: 858993459, Gap: 1, Duplicate: 42949673, Jitter: 156250,
				LossCorr: 1073741824, ReorderProb: 214748365, CorruptProb: 4294967, Rate64: 125000}},
		{"100% and 0%", Netem{Dev: "eth0", Loss: 1},
			&netlink.Netem{QdiscAttrs: attrs, Limit: 1000, Loss: 0xffffffff}},
		{"rate past 32 bits", Netem{Dev: "eth0", Rate: 1 << 33},
			&netlink.Netem{QdiscAttrs: attrs, Limit: 1000, Rate64: 1 << 33}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := netemQdisc(7, tc.n, tick)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("qdisc (-want +got):\n%s", diff)
			}
			if got.Type() != "netem" || netlink.HandleStr(got.Handle) != "7067:0" || got.Parent != netlink.HANDLE_ROOT {
				t.Errorf("qdisc %s %s parent %s, want netem 7067:0 at the root", got.Type(), netlink.HandleStr(got.Handle), netlink.HandleStr(got.Parent))
			}
			// What Show reads back from the kernel is what was asked for.
			n := tc.n
			if diff := cmp.Diff(n, netemFromQdisc("eth0", got, tick)); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShareToU32(t *testing.T) {
	for _, tc := range []struct {
		share float64
		want  uint32
	}{{0, 0}, {0.2, 858993459}, {0.5, 2147483648}, {0.01, 42949673}, {1, 0xffffffff}} {
		if got := shareToU32(tc.share); got != tc.want {
			t.Errorf("shareToU32(%v) = %d, want %d (tc's rint(share*UINT32_MAX))", tc.share, got, tc.want)
		}
		if back := u32ToShare(tc.want); back != tc.share {
			t.Errorf("u32ToShare(%d) = %v, want %v", tc.want, back, tc.share)
		}
	}
	// Why pinglab does not use netlink's own conversion: float32 puts 20% 13 units off tc's.
	if got := netlink.Percentage2u32(20); got == shareToU32(0.2) {
		t.Logf("netlink.Percentage2u32(20) = %d now matches tc", got)
	} else if got != 858993472 {
		t.Errorf("netlink.Percentage2u32(20) = %d, the float32 value was 858993472", got)
	}
}

func TestTicks(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 100 * time.Millisecond, 60 * time.Second} {
		ticks := durationToTicks(d, 15.625)
		if want := uint32(d.Microseconds() * 15625 / 1000); ticks != want {
			t.Errorf("durationToTicks(%v) = %d, want %d", d, ticks, want)
		}
		if back := ticksToDuration(ticks, 15.625); back != d {
			t.Errorf("ticksToDuration(%d) = %v, want %v", ticks, back, d)
		}
	}
	// The kernel's own rate, as tc reads it; every kernel since 2.6.31 publishes it.
	if tpu := netlink.TickInUsec(); tpu <= 0 {
		t.Errorf("netlink.TickInUsec() = %v: /proc/net/psched unreadable", tpu)
	}
}
