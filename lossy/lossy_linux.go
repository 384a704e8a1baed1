package lossy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CheckNetAdmin returns ErrPermission unless the process has CAP_NET_ADMIN in its effective set.
func CheckNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("lossy: read capabilities: %w", err)
	}
	if data[0].Effective&(1<<unix.CAP_NET_ADMIN) == 0 {
		return fmt.Errorf("lossy: %w", ErrPermission)
	}
	return nil
}

// conn holds the netlink connections to one namespace: rtnetlink (links, qdiscs) and
// nfnetlink (nftables). Both are bound to the namespace when opened, so no thread of the process
// stays in another namespace.
type conn struct {
	h    *netlink.Handle
	nft  *nftables.Conn
	ns   netns.NsHandle
	path string // the namespace's, "" for the process's own
}

func open(o Options) (*conn, error) {
	if err := CheckNetAdmin(); err != nil {
		return nil, err
	}
	p, err := o.NetnsPath()
	if err != nil {
		return nil, err
	}
	c := &conn{ns: netns.None(), path: p}
	var nftOpts []nftables.ConnOption
	if p != "" {
		ns, err := netns.GetFromPath(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("lossy: namespace %s does not exist (%s)", o.Netns, p)
			}
			return nil, fmt.Errorf("lossy: namespace %s: %w", o.Netns, err)
		}
		c.ns = ns
		nftOpts = append(nftOpts, nftables.WithNetNSFd(int(ns)))
	}
	if c.h, err = netlink.NewHandleAt(c.ns, unix.NETLINK_ROUTE); err != nil {
		c.close()
		return nil, fmt.Errorf("lossy: rtnetlink: %w", linkErr(err))
	}
	if c.nft, err = nftables.New(nftOpts...); err != nil {
		c.close()
		return nil, nftErr(err)
	}
	return c, nil
}

func (c *conn) close() {
	if c.h != nil {
		c.h.Close()
	}
	if c.ns.IsOpen() {
		c.ns.Close()
	}
}

// clear removes pinglab's table and netem qdiscs, in that order.
func (c *conn) clear() error {
	queueClear(c.nft)
	if err := nftFlush(c.nft); err != nil {
		return err
	}
	return clearNetem(c.h)
}

// ApplyNetem clears what pinglab had set in the namespace and puts a netem qdisc at the root
// of n.Dev. It fails, naming it, if that interface's root qdisc is someone else's (unless
// n.Force), and with ErrNetemMissing on a kernel without netem.
func ApplyNetem(ctx context.Context, o Options, n Netem) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := open(o)
	if err != nil {
		return err
	}
	defer c.close()
	// Everything that can be checked is, before anything changes; then the netem, which the
	// kernel may still refuse (no netem), before the old scenario goes: a failing apply
	// leaves what was there.
	l, err := checkNetem(c.h, n)
	if err != nil {
		return err
	}
	if err := applyNetem(c.path, l, n); err != nil {
		return err
	}
	queueNetemMark(c.nft, o.Holder)
	if err := nftFlush(c.nft); err != nil {
		return err
	}
	return clearNetemExcept(c.h, n.Dev)
}

// ApplyDrop clears what pinglab had set in the namespace and drops a random share of packets,
// in one nftables batch.
func ApplyDrop(ctx context.Context, o Options, d Drop) error {
	if err := d.Validate(); err != nil {
		return err
	}
	return applyRules(ctx, o, &d, nil)
}

// ApplyReject clears what pinglab had set in the namespace and rejects matching packets, in one
// nftables batch.
func ApplyReject(ctx context.Context, o Options, r Reject) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return applyRules(ctx, o, nil, &r)
}

func applyRules(ctx context.Context, o Options, d *Drop, r *Reject) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := open(o)
	if err != nil {
		return err
	}
	defer c.close()
	// The batch deletes the old table and builds the new one: a scenario never half-applies,
	// and one the kernel refuses leaves the old in place. The old netem goes after.
	queueScenario(c.nft, d, r, o.Holder)
	if err := nftFlush(c.nft); err != nil {
		return err
	}
	return clearNetem(c.h)
}

// Clear removes everything pinglab set in the namespace: its nftables table and its netem
// qdiscs. Clearing what is already clear is not an error.
func Clear(ctx context.Context, o Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := open(o)
	if err != nil {
		return err
	}
	defer c.close()
	return c.clear()
}

// Show reads back what pinglab has set in the namespace.
func Show(ctx context.Context, o Options) (State, error) {
	s := State{Netns: o.Netns}
	if err := ctx.Err(); err != nil {
		return s, err
	}
	c, err := open(o)
	if err != nil {
		return s, err
	}
	defer c.close()
	if err := readNetem(c.h, &s); err != nil {
		return s, err
	}
	if err := readRules(c.nft, &s); err != nil {
		return s, err
	}
	return s, nil
}

// Hold waits until d has passed (d <= 0: until ctx is done) or ctx is done, then clears the
// namespace. It is how a scenario lasts "for" a while and how Ctrl-C removes it. With
// o.Holder, the scenario the apply marked with it is removed, and only that one: a newer
// scenario that replaced it is left, and Hold returns ErrReplaced.
func Hold(ctx context.Context, o Options, d time.Duration) error {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
	case <-timeout:
	}
	if o.Holder == nil {
		return Clear(context.WithoutCancel(ctx), o)
	}
	c, err := open(o)
	if err != nil {
		return err
	}
	defer c.close()
	own, err := queueClearOwn(c.nft, o.Holder)
	if err != nil {
		return err
	}
	if !own {
		return fmt.Errorf("lossy: %w", ErrReplaced)
	}
	if err := nftFlush(c.nft); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("lossy: %w", ErrReplaced) // replaced since the mark was read
		}
		return err
	}
	return clearNetem(c.h)
}

// inNetns runs f on an OS thread switched into the namespace at path ("": the process's own,
// where f just runs), then switches the thread back. It runs on a goroutine of its own: if the switch back fails, the thread stays locked
// and Go discards it when the goroutine ends, so no other code runs in the wrong namespace.
func inNetns(path string, f func() error) error {
	if path == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("lossy: current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lossy: namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lossy: enter %s: %w", path, linkErr(err))
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("lossy: leave %s: %w", path, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
