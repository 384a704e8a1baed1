package main

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/sock"
)

// socketFlags are ping's -I, -Q and -t for the UDP and TCP clients, so that a lab can pin a
// client to an interface, a source address or a DSCP class as it pins ping.
func socketFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "interface", Aliases: []string{"I"}, Usage: "send from `IFACE` (a device name) or from the source address ADDR, as ping -I"},
		&cli.StringFlag{Name: "tos", Aliases: []string{"Q"}, Usage: "set the type of service (IPv6: traffic class) to `TOS`, decimal or 0x hex, as ping -Q"},
		&cli.IntFlag{Name: "ttl", Aliases: []string{"t"}, Usage: "send with time to live (IPv6: hop limit) `TTL`, 1..255, as ping -t"},
	}
}

// socketOptions reads socketFlags: the socket's options and the source address (the zero Addr
// when -I names a device or is not given). A value out of range is a usage error.
func socketOptions(c *cli.Context) (sock.Options, netip.Addr, error) {
	name := c.Command.HelpName
	var o sock.Options
	var src netip.Addr
	if s := c.String("interface"); s != "" {
		if a, err := netip.ParseAddr(s); err == nil {
			src = a.Unmap()
		} else {
			// Checked here, so that a device that does not exist is a usage error before
			// anything is sent, as ping's "SO_BINDTODEVICE eth9: No such device".
			if _, err := net.InterfaceByName(s); err != nil {
				return o, src, exitUsage("%s: SO_BINDTODEVICE %s: No such device", name, s)
			}
			o.Interface = s
		}
	}
	if s := c.String("tos"); s != "" {
		tos, err := strconv.ParseInt(s, 0, 32)
		if err != nil || tos < 0 || tos > 255 {
			return o, src, exitUsage("%s: the decimal value of TOS bits must be in range 0-255: %s", name, s)
		}
		o.TOS = int(tos)
	}
	if c.IsSet("ttl") {
		o.TTL = c.Int("ttl")
		if o.TTL < 1 || o.TTL > 255 {
			return o, src, exitUsage("%s: invalid argument: '%d': out of range: 1 <= value <= 255", name, o.TTL)
		}
	}
	return o, src, nil
}
