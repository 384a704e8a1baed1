package lossy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// labOptions applies opts to the defaults.
func labOptions(opts []LabOption) labConfig {
	c := labConfig{prefix: DefaultLabPrefix}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// LabUp builds the lab: hosts is 2 (client and server joined by a veth pair) or 3 (a router
// between them, forwarding IPv4 and IPv6). The namespaces are bound under /run/netns as
// `ip netns add` does, so `ip netns exec pinglab-client ...` works too. LabUp on a lab that
// exists (any of its namespaces) fails with ErrLabExists and changes nothing; a LabUp that fails
// half-way removes what it made.
func LabUp(ctx context.Context, hosts int, opts ...LabOption) (LabInfo, error) {
	cfg := labOptions(opts)
	plan, err := labPlan(hosts, cfg.prefix)
	if err != nil {
		return plan, err
	}
	if err := CheckNetAdmin(); err != nil {
		return plan, err
	}
	for _, name := range []string{HostClient, HostServer, HostRouter} {
		if p := filepath.Join("/run/netns", cfg.prefix+name); exists(p) {
			return plan, fmt.Errorf("lossy: %s: %w", p, ErrLabExists)
		}
	}
	var made []string
	if err := buildLab(ctx, plan, &made); err != nil {
		// Only what this call made: a lab another `lab up` made meanwhile stays.
		_ = removeNamed(context.WithoutCancel(ctx), made)
		return plan, err
	}
	return plan, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func buildLab(ctx context.Context, plan LabInfo, made *[]string) error {
	handles := map[string]netns.NsHandle{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	for _, h := range plan.Hosts {
		if err := ctx.Err(); err != nil {
			return err
		}
		ns, err := newNamed(h.Netns)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("lossy: %s: %w", h.Netns, ErrLabExists)
		}
		if err != nil {
			return err
		}
		*made = append(*made, h.Netns)
		handles[h.Name] = ns
	}
	nl := map[string]*netlink.Handle{}
	defer func() {
		for _, h := range nl {
			h.Close()
		}
	}()
	for name, ns := range handles {
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("lossy: lab %s: %w", name, linkErr(err))
		}
		nl[name] = h
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("lossy: lab %s: lo up: %w", name, err)
		}
	}
	// Each pair is made once, from the host that comes first in the plan.
	paired := map[[2]string]bool{}
	for _, h := range plan.Hosts {
		for _, l := range h.Links {
			if paired[[2]string{l.Peer, h.Name}] {
				continue
			}
			paired[[2]string{h.Name, l.Peer}] = true
			peer, _ := plan.Host(l.Peer)
			peerDev := ""
			for _, pl := range peer.Links {
				if pl.Peer == h.Name {
					peerDev = pl.Dev
				}
			}
			v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.Dev}, PeerName: peerDev,
				PeerNamespace: netlink.NsFd(int(handles[l.Peer]))}
			if err := nl[h.Name].LinkAdd(v); err != nil {
				return fmt.Errorf("lossy: lab veth %s:%s - %s:%s: %w", h.Name, l.Dev, l.Peer, peerDev, linkErr(err))
			}
		}
	}
	for _, h := range plan.Hosts {
		if err := configureHost(nl[h.Name], h); err != nil {
			return err
		}
		// A lab host answers every probe with its ICMP error: the kernel's rate limit (one
		// error a second per peer after a burst of a few) would turn errors into timeouts as
		// soon as a client pings faster than once a second, or traceroute sends its 3 probes.
		// Nor the global budget of every host (1000 errors a second, in bursts of 50 less a
		// random share), which a traceroute's 16 probes at once, run twice, would exhaust.
		sysctls := map[string]string{"/proc/sys/net/ipv4/icmp_ratelimit": "0", "/proc/sys/net/ipv6/icmp/ratelimit": "0",
			"/proc/sys/net/ipv4/icmp_msgs_per_sec": "100000", "/proc/sys/net/ipv4/icmp_msgs_burst": "100000"}
		if h.Forwarding {
			sysctls["/proc/sys/net/ipv4/ip_forward"] = "1"
			sysctls["/proc/sys/net/ipv6/conf/all/forwarding"] = "1"
		}
		err := inNetns(filepath.Join("/run/netns", h.Netns), func() error {
			for p, v := range sysctls {
				if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("lossy: lab %s: sysctl: %w", h.Name, err)
		}
	}
	return nil
}

func configureHost(h *netlink.Handle, host LabHost) error {
	for _, l := range host.Links {
		link, err := h.LinkByName(l.Dev)
		if err != nil {
			return fmt.Errorf("lossy: lab %s: %s: %w", host.Name, l.Dev, err)
		}
		for _, a := range l.Addrs {
			// No duplicate address detection: the lab's addresses are unique by construction,
			// and DAD would leave IPv6 unusable for the first seconds.
			na := &netlink.Addr{IPNet: ipNet(a), Flags: unix.IFA_F_NODAD}
			if err := h.AddrAdd(link, na); err != nil {
				return fmt.Errorf("lossy: lab %s: address %s on %s: %w", host.Name, a, l.Dev, err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("lossy: lab %s: %s up: %w", host.Name, l.Dev, err)
		}
	}
	for _, gw := range []netip.Addr{host.Gateway4, host.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		r := &netlink.Route{Gw: net.IP(gw.AsSlice())}
		if gw.Is4() {
			r.Family = unix.AF_INET
		} else {
			r.Family = unix.AF_INET6
		}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("lossy: lab %s: default route via %s: %w", host.Name, gw, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// newNamed makes a network namespace bound at /run/netns/NAME. netns.NewNamed switches the
// calling thread into it; it runs on a locked thread of its own that switches back (or, failing
// that, is discarded).
func newNamed(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			c <- result{netns.None(), fmt.Errorf("lossy: current namespace: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if serr := netns.Set(orig); serr != nil {
			if err == nil {
				ns.Close()
			}
			c <- result{netns.None(), fmt.Errorf("lossy: back from %s: %w", name, serr)}
			return
		}
		runtime.UnlockOSThread()
		if err != nil {
			c <- result{netns.None(), fmt.Errorf("lossy: create namespace %s: %w", name, linkErr(err))}
			return
		}
		c <- result{ns, nil}
	}()
	r := <-c
	return r.ns, r.err
}

// LabDown removes the lab's namespaces and, with them, everything in them (veths, addresses,
// routes, scenarios). Removing a lab that is not there is not an error.
func LabDown(ctx context.Context, opts ...LabOption) error {
	cfg := labOptions(opts)
	if err := CheckNetAdmin(); err != nil {
		return err
	}
	return removeNamed(ctx, []string{cfg.prefix + HostClient, cfg.prefix + HostRouter, cfg.prefix + HostServer})
}

// removeNamed unbinds and removes named namespaces, skipping those that are not there.
func removeNamed(ctx context.Context, names []string) error {
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join("/run/netns", name)
		if !exists(p) {
			continue
		}
		// EINVAL: the file is there but nothing is mounted on it (a half-made namespace).
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("lossy: unmount %s: %w", p, linkErr(err)))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lossy: remove %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// LabStatus reads the lab as it is: hosts, addresses, routes, forwarding, and the scenario
// pinglab lossy has set in each host. With no lab up it returns an error saying so.
func LabStatus(ctx context.Context, opts ...LabOption) (LabInfo, error) {
	cfg := labOptions(opts)
	l := LabInfo{Prefix: cfg.prefix}
	if err := CheckNetAdmin(); err != nil {
		return l, err
	}
	for _, name := range []string{HostClient, HostRouter, HostServer} {
		host := LabHost{Name: name, Netns: cfg.prefix + name}
		p := filepath.Join("/run/netns", host.Netns)
		if !exists(p) {
			continue
		}
		if err := readHost(p, &host); err != nil {
			return l, err
		}
		s, err := Show(ctx, Options{Netns: host.Netns})
		if err != nil {
			return l, err
		}
		host.Scenario = &s
		l.Hosts = append(l.Hosts, host)
	}
	if len(l.Hosts) == 0 {
		return l, fmt.Errorf("lossy: %w", ErrNoLab)
	}
	// A veth does not name the namespace of its peer; the plan the lab was built from does.
	hosts := 2
	if _, ok := l.Host(HostRouter); ok {
		hosts = 3
	}
	plan, _ := labPlan(hosts, cfg.prefix)
	for i, h := range l.Hosts {
		p, _ := plan.Host(h.Name)
		for j, link := range h.Links {
			for _, pl := range p.Links {
				if pl.Dev == link.Dev {
					l.Hosts[i].Links[j].Peer = pl.Peer
				}
			}
		}
	}
	return l, nil
}

func readHost(path string, host *LabHost) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("lossy: %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("lossy: %s: %w", path, linkErr(err))
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("lossy: %s: %w", path, err)
	}
	for _, link := range links {
		if link.Attrs().Name == "lo" {
			continue
		}
		ll := LabLink{Dev: link.Attrs().Name}
		addrs, err := h.AddrList(link, unix.AF_UNSPEC)
		if err != nil {
			return fmt.Errorf("lossy: %s: %w", path, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || ip.Unmap().IsLinkLocalUnicast() {
				continue
			}
			ones, _ := a.Mask.Size()
			ll.Addrs = append(ll.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		slices.SortFunc(ll.Addrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		host.Links = append(host.Links, ll)
	}
	slices.SortFunc(host.Links, func(a, b LabLink) int { return strings.Compare(a.Dev, b.Dev) })
	routes, err := h.RouteList(nil, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("lossy: %s: %w", path, err)
	}
	for _, r := range routes {
		if r.Dst != nil && !isDefaultDst(r.Dst) || r.Gw == nil {
			continue
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		if gw = gw.Unmap(); gw.Is4() {
			host.Gateway4 = gw
		} else {
			host.Gateway6 = gw
		}
	}
	return inNetns(path, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		host.Forwarding = err == nil && strings.TrimSpace(string(b)) == "1"
		return nil
	})
}

func isDefaultDst(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

// StartIn starts cmd inside the network namespace (a name under /run/netns, or a path). The
// child is forked from a thread switched into the namespace, so it is born there, as with
// `ip netns exec` (without its remount of /sys).
func StartIn(namespace string, cmd *exec.Cmd) error {
	p, err := netnsPath(namespace)
	if err != nil {
		return err
	}
	if p == "" {
		return cmd.Start()
	}
	if !exists(p) {
		return fmt.Errorf("lossy: namespace %s does not exist", namespace)
	}
	return inNetns(p, cmd.Start)
}

// LabExec runs cmd in a lab host (client, server or router, or the namespace's full name) and
// waits for it. Build cmd with exec.CommandContext so that ctx ends it.
func LabExec(ctx context.Context, host string, cmd *exec.Cmd, opts ...LabOption) error {
	cfg := labOptions(opts)
	name, err := labHostName(host, cfg.prefix)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ns := cfg.prefix + name
	if !exists(filepath.Join("/run/netns", ns)) {
		return fmt.Errorf("lossy: no lab host %s (%s): %w", name, ns, ErrNoLab)
	}
	if err := StartIn(ns, cmd); err != nil {
		return err
	}
	return cmd.Wait()
}
