package lossy

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

// ne32 appends u32s in host byte order, as rtnetlink structs are.
func ne32(b []byte, v ...uint32) []byte {
	for _, x := range v {
		b = binary.NativeEndian.AppendUint32(b, x)
	}
	return b
}

// attr appends one rtattr (length, type, data, padding to 4).
func attr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestNetemRequestBytes(t *testing.T) {
	const tick = 15.625 // ticks per microsecond: /proc/net/psched 000003e8 00000040 on a 1 GHz clock
	for _, tc := range []struct {
		name string
		n    Netem
		want []byte
	}{
		{"loss 20%", Netem{Dev: "eth0", Loss: 0.2}, func() []byte {
			b := append(ne32(nil, 0, 7), ne32(nil, 0x70670000, 0xffffffff, 0)...) // family+pad, ifindex, handle 7067:, parent root, info
			b = attr(b, 1, []byte("netem\x00"))
			return attr(b, 2, ne32(nil, 0, 1000, 858993459, 0, 0, 0)) // latency, limit, loss, gap, duplicate, jitter
		}()},
		{"everything", Netem{Dev: "eth0", Loss: 0.2, LossCorr: 0.25, Delay: 100 * time.Millisecond, Jitter: 10 * time.Millisecond,
			Duplicate: 0.01, Reorder: 0.05, Corrupt: 0.001, Rate: 125000}, func() []byte {
			b := append(ne32(nil, 0, 7), ne32(nil, 0x70670000, 0xffffffff, 0)...)
			b = attr(b, 1, []byte("netem\x00"))
			opts := ne32(nil, 1562500, 1000, 858993459, 1, 42949673, 156250)
			opts = attr(opts, 1, ne32(nil, 0, 1073741824, 0)) // TCA_NETEM_CORR: delay, loss, duplicate
			opts = attr(opts, 3, ne32(nil, 214748365, 0))     // TCA_NETEM_REORDER
			opts = attr(opts, 4, ne32(nil, 4294967, 0))       // TCA_NETEM_CORRUPT
			opts = attr(opts, 6, ne32(nil, 125000, 0, 0, 0))  // TCA_NETEM_RATE: bytes/s, overheads, cell
			return attr(b, 2, opts)
		}()},
		{"100% and 0%", Netem{Dev: "eth0", Loss: 1}, func() []byte {
			b := append(ne32(nil, 0, 7), ne32(nil, 0x70670000, 0xffffffff, 0)...)
			b = attr(b, 1, []byte("netem\x00"))
			return attr(b, 2, ne32(nil, 0, 1000, 0xffffffff, 0, 0, 0))
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, netemRequest(7, tc.n, tick)); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
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
