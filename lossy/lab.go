package lossy

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultLabPrefix starts the names of the lab's namespaces: pinglab-client, pinglab-server,
// pinglab-router.
const DefaultLabPrefix = "pinglab-"

// Lab host names.
const (
	HostClient = "client"
	HostServer = "server"
	HostRouter = "router"
)

// A LabOption changes how the lab functions name things.
type LabOption func(*labConfig)

type labConfig struct{ prefix string }

// WithPrefix names the lab's namespaces PREFIXclient, PREFIXserver, PREFIXrouter instead of
// pinglab-client ..., so that tests build labs of their own beside a user's.
func WithPrefix(p string) LabOption { return func(c *labConfig) { c.prefix = p } }

// LabLink is one end of a veth pair inside a lab host.
type LabLink struct {
	Dev   string
	Addrs []netip.Prefix
	// Peer is the host at the other end.
	Peer string
}

// LabHost is one namespace of the lab.
type LabHost struct {
	Name  string // client, server or router
	Netns string // the namespace's name, as `ip netns` lists it
	Links []LabLink
	// Gateway4 and Gateway6 are the default routes' next hops (the router), if any.
	Gateway4, Gateway6 netip.Addr
	// Forwarding is set on the router.
	Forwarding bool
	// Scenario is what pinglab lossy has set in the host (LabStatus only).
	Scenario *State
}

// Addr returns the host's first address of the family (v6 false: IPv4).
func (h LabHost) Addr(v6 bool) netip.Addr {
	for _, l := range h.Links {
		for _, a := range l.Addrs {
			if a.Addr().Is6() == v6 {
				return a.Addr()
			}
		}
	}
	return netip.Addr{}
}

// LabInfo describes a lab.
type LabInfo struct {
	Prefix string
	Hosts  []LabHost
}

// Host returns the host by name (client, server, router), and whether the lab has it.
func (l LabInfo) Host(name string) (LabHost, bool) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return LabHost{}, false
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// labPlan is the lab LabUp builds. The addresses are private (RFC 1918, RFC 4193) and exist only
// inside the lab's namespaces: 10.77.1.0/24 and fd00:77:1::/64 on the client's side,
// 10.77.2.0/24 and fd00:77:2::/64 between router and server.
func labPlan(hosts int, prefix string) (LabInfo, error) {
	l := LabInfo{Prefix: prefix}
	switch hosts {
	case 2:
		l.Hosts = []LabHost{
			{Name: HostClient, Links: []LabLink{{Dev: "eth0", Peer: HostServer,
				Addrs: []netip.Prefix{pfx("10.77.1.1/24"), pfx("fd00:77:1::1/64")}}}},
			{Name: HostServer, Links: []LabLink{{Dev: "eth0", Peer: HostClient,
				Addrs: []netip.Prefix{pfx("10.77.1.2/24"), pfx("fd00:77:1::2/64")}}}},
		}
	case 3:
		l.Hosts = []LabHost{
			{Name: HostClient, Gateway4: addr("10.77.1.254"), Gateway6: addr("fd00:77:1::fe"),
				Links: []LabLink{{Dev: "eth0", Peer: HostRouter,
					Addrs: []netip.Prefix{pfx("10.77.1.1/24"), pfx("fd00:77:1::1/64")}}}},
			{Name: HostRouter, Forwarding: true, Links: []LabLink{
				{Dev: "eth0", Peer: HostClient, Addrs: []netip.Prefix{pfx("10.77.1.254/24"), pfx("fd00:77:1::fe/64")}},
				{Dev: "eth1", Peer: HostServer, Addrs: []netip.Prefix{pfx("10.77.2.254/24"), pfx("fd00:77:2::fe/64")}}}},
			{Name: HostServer, Gateway4: addr("10.77.2.254"), Gateway6: addr("fd00:77:2::fe"),
				Links: []LabLink{{Dev: "eth0", Peer: HostRouter,
					Addrs: []netip.Prefix{pfx("10.77.2.2/24"), pfx("fd00:77:2::2/64")}}}},
		}
	default:
		return l, fmt.Errorf("lossy: lab of %d hosts: %w", hosts, errHosts)
	}
	for i := range l.Hosts {
		l.Hosts[i].Netns = prefix + l.Hosts[i].Name
	}
	return l, nil
}

// labHostName turns "client" or "pinglab-client" into the host name.
func labHostName(s, prefix string) (string, error) {
	name := strings.TrimPrefix(s, prefix)
	switch name {
	case HostClient, HostServer, HostRouter:
		return name, nil
	}
	return "", fmt.Errorf("lossy: %q: %w", s, errHost)
}
