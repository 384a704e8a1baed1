package lossy

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func init() {
	// Ask for the kernel's own words with errors on the sockets netlink opens per call.
	nl.EnableErrorMessageReporting = true
}

// netemHandle is pinglab's netem qdisc handle, 7067:0.
var netemHandle = netlink.MakeHandle(NetemHandleMajor, 0)

// shareToU32 converts a share (0..1) into netem's u32 probability the way tc does
// (rint(share * UINT32_MAX)). netlink.Percentage2u32 computes in float32, which puts 20% at
// 858993472 instead of tc's 858993459; pinglab matches tc, so `tc qdisc show` prints what the
// user asked for.
func shareToU32(v float64) uint32 {
	return uint32(math.Round(v * math.MaxUint32))
}

func u32ToShare(v uint32) float64 {
	return math.Round(float64(v)/math.MaxUint32*1e6) / 1e6
}

// durationToTicks converts a time into psched ticks as tc does (microseconds times the ticks
// per microsecond the kernel publishes in /proc/net/psched).
func durationToTicks(d time.Duration, ticksPerUsec float64) uint32 {
	return uint32(float64(d.Microseconds()) * ticksPerUsec)
}

func ticksToDuration(t uint32, ticksPerUsec float64) time.Duration {
	if ticksPerUsec == 0 {
		return 0
	}
	return time.Duration(math.Round(float64(t)/ticksPerUsec)) * time.Microsecond
}

// netemQdisc is n as the netem qdisc that `tc qdisc replace dev DEV root handle 7067: netem ...`
// makes at the root of interface ifindex: the raw u32 fields, computed as tc computes them
// (netlink.NewNetem converts shares in float32, and times with its own rounding).
func netemQdisc(ifindex int, n Netem, ticksPerUsec float64) *netlink.Netem {
	q := &netlink.Netem{
		QdiscAttrs:  netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netemHandle, Parent: netlink.HANDLE_ROOT},
		Latency:     durationToTicks(n.Delay, ticksPerUsec),
		Limit:       1000, // tc's default queue length
		Loss:        shareToU32(n.Loss),
		LossCorr:    shareToU32(n.LossCorr),
		Duplicate:   shareToU32(n.Duplicate),
		Jitter:      durationToTicks(n.Jitter, ticksPerUsec),
		ReorderProb: shareToU32(n.Reorder),
		CorruptProb: shareToU32(n.Corrupt),
		Rate64:      n.Rate,
	}
	if n.Reorder > 0 {
		q.Gap = 1 // as tc: reorder without a gap would do nothing
	}
	return q
}

// netemFromQdisc reads a netem qdisc the kernel reported back into a Netem.
func netemFromQdisc(dev string, q *netlink.Netem, ticksPerUsec float64) Netem {
	return Netem{
		Dev:       dev,
		Loss:      u32ToShare(q.Loss),
		LossCorr:  u32ToShare(q.LossCorr),
		Delay:     ticksToDuration(q.Latency, ticksPerUsec),
		Jitter:    ticksToDuration(q.Jitter, ticksPerUsec),
		Duplicate: u32ToShare(q.Duplicate),
		Reorder:   u32ToShare(q.ReorderProb),
		Corrupt:   u32ToShare(q.CorruptProb),
		Rate:      q.Rate64,
	}
}

// rootQdisc returns the root qdisc of a link, nil if the kernel lists none.
func rootQdisc(h *netlink.Handle, l netlink.Link) (netlink.Qdisc, error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			return q, nil
		}
	}
	return nil, nil
}

// isDefault reports whether a root qdisc is one the kernel attached by itself. The kernel gives
// its default qdiscs (noqueue, pfifo_fast, fq_codel, mq, or whatever net.core.default_qdisc
// names) the handle 0:, and never gives that handle to a qdisc a user adds (tc's "root handle
// 0:" or no handle at all gets an automatic 8001: and up), so handle 0: is the exact mark of a
// default, whatever its kind.
func isDefault(q netlink.Qdisc) bool {
	return q == nil || q.Attrs().Handle == 0
}

func isOurs(q netlink.Qdisc) bool {
	return q != nil && q.Attrs().Handle == netemHandle && q.Type() == "netem"
}

// clearNetem removes pinglab's netem qdiscs from every interface; the kernel puts its default
// back.
func clearNetem(h *netlink.Handle) error { return clearNetemExcept(h, "") }

// clearNetemExcept removes pinglab's netem qdiscs from every interface but keep.
func clearNetemExcept(h *netlink.Handle, keep string) error {
	links, err := h.LinkList()
	if err != nil {
		return linkErr(err)
	}
	for _, l := range links {
		q, err := rootQdisc(h, l)
		if err != nil {
			return linkErr(err)
		}
		if !isOurs(q) || (keep != "" && l.Attrs().Name == keep) {
			continue
		}
		if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("lossy: remove netem from %s: %w", l.Attrs().Name, linkErr(err))
		}
	}
	return nil
}

func readNetem(h *netlink.Handle, s *State) error {
	links, err := h.LinkList()
	if err != nil {
		return linkErr(err)
	}
	for _, l := range links {
		q, err := rootQdisc(h, l)
		if err != nil {
			return linkErr(err)
		}
		if n, ok := q.(*netlink.Netem); ok && isOurs(q) {
			s.Netem = append(s.Netem, netemFromQdisc(l.Attrs().Name, n, netlink.TickInUsec()))
		}
	}
	return nil
}

// checkNetem returns n's interface, or why netem cannot go there: no such interface, or a
// root qdisc that is someone else's (unless n.Force).
func checkNetem(h *netlink.Handle, n Netem) (netlink.Link, error) {
	l, err := h.LinkByName(n.Dev)
	if err != nil {
		return nil, fmt.Errorf("lossy: interface %q: %w", n.Dev, linkErr(err))
	}
	q, err := rootQdisc(h, l)
	if err != nil {
		return nil, linkErr(err)
	}
	if !isDefault(q) && !isOurs(q) && !n.Force {
		return nil, fmt.Errorf("lossy: %s: %w: %s %s is there (someone's tc qdisc)",
			n.Dev, ErrForeignQdisc, q.Type(), netlink.HandleStr(q.Attrs().Handle))
	}
	return l, nil
}

// applyNetem puts n at the root of its interface l in the namespace at path ("": the
// process's own), replacing the qdisc there (the default, pinglab's, or with n.Force anyone's).
func applyNetem(path string, l netlink.Link, n Netem) error {
	// The package's QdiscReplace, not h's: a Handle's sockets cannot ask for the kernel's own
	// words with an error (NETLINK_EXT_ACK, "Specified qdisc kind is unknown"), the one-shot
	// socket of a package-level call can (nl.EnableErrorMessageReporting, set in init). It opens
	// in the namespace of the thread, which inNetns switches.
	q := netemQdisc(l.Attrs().Index, n, netlink.TickInUsec())
	if err := inNetns(path, func() error { return netlink.QdiscReplace(q) }); err != nil {
		if errors.Is(err, unix.ENOENT) {
			// RTM_NEWQDISC answers ENOENT only for a kind it does not know (a missing link is
			// ENODEV): "Specified qdisc kind is unknown".
			says := err.Error()
			if _, msg, ok := strings.Cut(says, ": "); ok {
				says = msg // the extended ack's words, after the errno's
			}
			return fmt.Errorf("lossy: %w (sch_netem is not built or cannot be loaded; the kernel says %q)",
				ErrNetemMissing, says)
		}
		return fmt.Errorf("lossy: netem on %s: %w", n.Dev, linkErr(err))
	}
	return nil
}

func linkErr(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return ErrPermission
	}
	return err
}
