package lossy

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestFailedApplyLeavesScenario applies a drop, then netem applies that fail (no such
// interface, someone's qdisc, a kernel without netem): each must leave the drop as it was.
func TestFailedApplyLeavesScenario(t *testing.T) {
	l := testLab(t, 2)
	ctx := context.Background()
	o := Options{Netns: host(t, l, HostServer).Netns}
	d := Drop{Prob: 0.07, Dir: "in"}
	if err := ApplyDrop(ctx, o, d); err != nil {
		t.Fatal(err)
	}
	want := State{Netns: o.Netns, Drop: &d, Table: true}
	check := func(after string) {
		t.Helper()
		st, err := Show(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, st, netipCmp); diff != "" {
			t.Errorf("after %s (-want +got):\n%s", after, diff)
		}
	}
	if err := ApplyNetem(ctx, o, Netem{Dev: "nonexistent", Loss: 0.2}); err == nil {
		t.Fatal("netem on a missing interface succeeded")
	}
	check("netem on a missing interface")

	// Someone's qdisc at the root of eth0: a token bucket, as tc would add.
	nsh, err := netns.GetFromName(o.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	tbf := &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: eth0.Attrs().Index, Parent: netlink.HANDLE_ROOT,
		Handle: netlink.MakeHandle(1, 0)}, Rate: 125000000, Limit: 100000, Buffer: 100000}
	if err := h.QdiscAdd(tbf); err != nil {
		t.Fatal(err)
	}
	if err := ApplyNetem(ctx, o, Netem{Dev: "eth0", Loss: 0.2}); !errors.Is(err, ErrForeignQdisc) {
		t.Fatalf("netem over someone's qdisc: %v, want ErrForeignQdisc", err)
	}
	check("netem over someone's qdisc")

	if err := ApplyNetem(ctx, o, Netem{Dev: "lo", Loss: 0.2}); err == nil {
		t.Log("this kernel has netem: the netem replaced the drop, as it should")
		return
	} else if !errors.Is(err, ErrNetemMissing) {
		t.Fatal(err)
	}
	check("netem on a kernel without it")
}

// TestHoldRemovesOwnOnly holds a drop, replaces it with a reject before the hold ends, and
// checks the holder leaves the reject (ErrReplaced); a holder whose scenario is still there
// removes it.
func TestHoldRemovesOwnOnly(t *testing.T) {
	l := testLab(t, 2)
	ctx := context.Background()
	ns := host(t, l, HostServer).Netns
	first := Options{Netns: ns, Holder: NewHolder(time.Second)}
	if err := ApplyDrop(ctx, first, Drop{Prob: 0.2}); err != nil {
		t.Fatal(err)
	}
	st, err := Show(ctx, first)
	if err != nil || st.Holder == nil || st.Holder.Gen != first.Holder.Gen || st.Holder.Gone {
		t.Fatalf("Show of a held drop: %+v %v, want its holder, running", st, err)
	}
	if w := st.Words(); len(w) != 2 || !strings.HasPrefix(w[1], "held by pid ") {
		t.Errorf("Words() = %q, want the drop and who holds it", w)
	}
	held := make(chan error, 1)
	go func() { held <- Hold(ctx, first, 500*time.Millisecond) }()
	r := Reject{With: HostUnreachable}
	if err := ApplyReject(ctx, Options{Netns: ns}, r); err != nil {
		t.Fatal(err)
	}
	if err := <-held; !errors.Is(err, ErrReplaced) {
		t.Errorf("Hold of a replaced scenario = %v, want ErrReplaced", err)
	}
	st, err = Show(ctx, first)
	if diff := cmp.Diff(State{Netns: ns, Reject: &r, Table: true}, st, netipCmp); err != nil || diff != "" {
		t.Errorf("after the first holder's time (-want +got), %v:\n%s", err, diff)
	}

	own := Options{Netns: ns, Holder: NewHolder(time.Second)}
	if err := ApplyDrop(ctx, own, Drop{Prob: 0.3}); err != nil {
		t.Fatal(err)
	}
	if err := Hold(ctx, own, 100*time.Millisecond); err != nil {
		t.Fatalf("Hold of its own scenario: %v", err)
	}
	if st, err := Show(ctx, own); err != nil || !st.Empty() {
		t.Errorf("after its holder's time: %+v %v, want nothing", st, err)
	}
}

// TestShowHolderGone marks a drop with a holder process, SIGKILLs it, and checks Show says so.
func TestShowHolderGone(t *testing.T) {
	l := testLab(t, 2)
	ctx := context.Background()
	ns := host(t, l, HostServer).Netns
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	holder := NewHolder(time.Minute)
	holder.PID = sleep.Process.Pid
	o := Options{Netns: ns, Holder: holder}
	if err := ApplyDrop(ctx, o, Drop{Prob: 0.2}); err != nil {
		t.Fatal(err)
	}
	_ = sleep.Process.Kill()
	_ = sleep.Wait()
	st, err := Show(ctx, o)
	if err != nil || st.Holder == nil || !st.Holder.Gone || st.Drop == nil {
		t.Fatalf("Show after the holder was killed: %+v %v, want the drop and its holder gone", st, err)
	}
	if w := st.Words(); len(w) != 2 || !strings.Contains(w[1], "is gone: it stays until pinglab lossy clear") {
		t.Errorf("Words() = %q, want the drop and that its holder is gone", w)
	}
}
