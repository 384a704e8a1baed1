package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/internal/report"
)

func init() { register(pingCommand) }

func pingCommand() *cli.Command {
	flags := append(clientFlags(icmpping.DefaultSize),
		&cli.IntFlag{Name: "ttl", Aliases: []string{"t"}, Usage: "send with time to live (IPv6: hop limit) `TTL`, 1..255"},
		&cli.BoolFlag{Name: "privileged", Usage: "use a raw socket (root or CAP_NET_RAW) instead of trying an unprivileged datagram socket first"},
		&cli.BoolFlag{Name: "numeric", Aliases: []string{"n"}, Usage: "look no names up: print addresses only"},
		&cli.BoolFlag{Name: "names", Aliases: []string{"H"}, Usage: "look the names of the replying addresses up even for a numeric target"},
		&cli.StringFlag{Name: "interface", Aliases: []string{"I"}, Usage: "send from `IFACE` (a device name) or from the source address ADDR"},
		&cli.StringFlag{Name: "pattern", Aliases: []string{"p"}, Usage: "fill the payload with the hex bytes `PATTERN` (up to 16, as ping -p ff00)"},
		&cli.StringFlag{Name: "tos", Aliases: []string{"Q"}, Usage: "set the type of service (IPv6: traffic class) to `TOS`, decimal or 0x hex"},
		&cli.StringFlag{Name: "pmtu", Aliases: []string{"M"}, Usage: "path MTU discovery `HINT`: do (don't fragment), want, probe or dont"},
		&cli.IntFlag{Name: "mark", Aliases: []string{"m"}, Usage: "tag the packets with firewall mark `MARK`"},
		&cli.IntFlag{Name: "ident", Aliases: []string{"e"}, Usage: "use echo identifier `ID` (1..65535)"},
		&cli.BoolFlag{Name: "broadcast", Aliases: []string{"b"}, Usage: "allow pinging a broadcast address"},
		&cli.BoolFlag{Name: "dont-route", Aliases: []string{"r"}, Usage: "bypass the routing table: hosts on an attached network only"},
		&cli.BoolFlag{Name: "no-loop", Aliases: []string{"L"}, Usage: "keep multicast probes from looping back to this host"},
		&cli.BoolFlag{Name: "sticky-source", Aliases: []string{"B"}, Usage: "keep the source address the first probe left from (pinglab always does)"},
		&cli.BoolFlag{Name: "connect", Aliases: []string{"C"}, Usage: "ping -C: accepted; pinglab finds the route by connecting a UDP socket, as ping does"},
		&cli.BoolFlag{Name: "user-time", Aliases: []string{"U"}, Usage: "time replies by this process's clock instead of the kernel's receive timestamps"},
		&cli.BoolFlag{Name: "audible", Aliases: []string{"a"}, Usage: "ring the terminal's bell on every reply"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "ping -v: accepted; pinglab prints no more than without it"},
		&cli.BoolFlag{Name: "unrounded", Aliases: []string{"3"}, Usage: "print each reply's time with three decimals, unrounded"},
		&cli.BoolFlag{Name: "ping-version", Aliases: []string{"V"}, Usage: "print the version and exit, as ping -V"},
	)
	return &cli.Command{
		Name:      "ping",
		Usage:     "ICMP / ICMPv6 echo, as iputils ping (exercise 1)",
		UsageText: "pinglab ping [flags] HOST",
		Description: `Sends echo requests carrying the send time and a per-run cookie, and prints the replies,
the ICMP errors that come back ("From 10.0.0.1 icmp_seq=3 Destination Host Unreachable") and
the summary as iputils ping does, with the same options, lines and exit codes. No root needed
where the system allows unprivileged ICMP (net.ipv4.ping_group_range); otherwise a raw socket
is used, and when neither can be opened pinglab says what to do.

Examples:
   pinglab ping 127.0.0.1 -c 3                  # three pings, one a second
   pinglab ping ::1 -c 10 -i 0.2 -s 1000         # IPv6, 200 ms apart, 1000-byte payload
   pinglab ping 10.0.0.2 -t 1 -c 1              # "Time to live exceeded" from the first router
   pinglab ping -I eth0 -Q 0x10 -c 3 10.0.0.2    # from eth0, low-delay type of service
   pinglab ping localhost -c 100 -i 10ms -q --format json
   sudo pinglab ping -f -c 1000 127.0.0.1        # flood: as fast as replies come back`,
		Flags:  flags,
		Action: icmpPing,
	}
}

func icmpPing(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Bool("ping-version") {
		// ping -V's two lines, which scripts (iputils' own tests among them) read: the release
		// whose options and output pinglab follows, and the build features, pinglab's own.
		fmt.Fprintf(c.App.Writer, "ping from iputils 20221126 (options and output), pinglab %s\n", appVersion())
		fmt.Fprintf(c.App.Writer, "libcap: no, IDN: no, NLS: no, error.h: no, getrandom(): yes, __fpending(): no\n")
		return nil
	}
	if c.Args().Len() == 0 {
		return exitUsage("%s: usage error: Destination address required", name)
	}
	target, err := oneArg(c, "HOST")
	if err != nil {
		return err
	}
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	if c.IsSet("count") && c.Int("count") <= 0 {
		// pinglab's other clients take -c 0 as "until interrupted"; ping refuses it.
		return exitUsage("%s: invalid argument: '%d': out of range: 1 <= value <= 9223372036854775807", name, c.Int("count"))
	}
	if w := c.String("deadline"); c.IsSet("deadline") {
		// ping's -w counts whole seconds ("-w0.1" is refused); pinglab's durations ("500ms")
		// stay an extension.
		if f, err := strconv.ParseFloat(w, 64); err == nil && f != float64(int64(f)) {
			return exitUsage("%s: invalid argument: '%s'", name, w)
		}
	}
	cr, err := newClientRun(c)
	if err != nil {
		return err
	}
	cr.ropts.Audible = c.Bool("audible")
	cr.ropts.Unrounded = c.Bool("unrounded")
	// iputils: -f without -i sends as fast as the replies come back, which only root may.
	if err := icmpping.CheckInterval(os.Getuid(), cr.opts.Interval); err != nil {
		return exitUsage("%s: %v", name, err)
	}
	cfg, err := pingConfig(c)
	if err != nil {
		return err
	}
	h, conn, err := dialICMP(c, cfg, target, family)
	if err != nil {
		return err
	}
	defer conn.Close()
	if p := cfg.Pattern; len(p) > 0 {
		fmt.Fprintf(c.App.Writer, "PATTERN: 0x%x\n", p)
	}
	if cr.opts.Flood && cr.opts.Interval == 0 {
		// A flood is one goroutine sending and reading (probe.DeadlineReceiver): a second P
		// only adds a thread parked in epoll that every send and every reply wakes (a quarter
		// of the time in perf). Set for the run only.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	return cr.run(c.Context, h, conn)
}

// dialICMP resolves target and opens the ICMP socket to it with cfg, as ping and watch's
// icmp: targets do.
func dialICMP(c *cli.Context, cfg icmpping.Config, target, family string) (report.Header, *icmpping.Conn, error) {
	name := c.Command.HelpName
	var err error
	cfg.Target, err = icmpping.Resolve(c.Context, "ip"+family, target)
	if err != nil {
		return report.Header{}, nil, exitUsage("%s: %s: %s", name, target, capitalize(resolveWords(err)))
	}
	// iputils looks the names of the repliers up only when the target was a name.
	_, literal := netip.ParseAddr(strings.Trim(target, "[]"))
	cfg.Names = !c.Bool("numeric") && (literal != nil || c.Bool("names"))
	conn, err := icmpping.Dial(c.Context, cfg)
	if err != nil {
		if words, ok := dialWords(err); ok {
			return report.Header{}, nil, exitUsage("%s: %s", name, words)
		}
		return report.Header{}, nil, failure(c, err)
	}
	size := cfg.Size
	if size == icmpping.NoPayload {
		size = 0
	}
	h := report.Header{Proto: "icmp", Target: target, Addr: cfg.Target.String(), Size: size,
		Line: conn.HeaderLine(target), Untimed: conn.Untimed()}
	return h, conn, nil
}

// pingConfig reads ping's own flags into an icmpping.Config (the target aside). A value out of
// range is a usage error, reported before anything is sent.
func pingConfig(c *cli.Context) (icmpping.Config, error) {
	name := c.Command.HelpName
	cfg := icmpping.Config{Privileged: c.Bool("privileged"), UserTime: c.Bool("user-time"),
		Broadcast: c.Bool("broadcast"), DontRoute: c.Bool("dont-route"), NoLoop: c.Bool("no-loop")}
	if c.IsSet("ttl") {
		cfg.TTL = c.Int("ttl")
		switch {
		case cfg.TTL == 0:
			// iputils takes 0 and fails to set it.
			return cfg, exitUsage("%s: cannot set unicast time-to-live: Invalid argument", name)
		case cfg.TTL < 0 || cfg.TTL > 255:
			return cfg, exitUsage("%s: invalid argument: '%d': out of range: 0 <= value <= 255", name, cfg.TTL)
		}
	}
	cfg.Size = c.Int("size")
	if cfg.Size < 0 {
		return cfg, exitUsage("%s: invalid argument: '%d': out of range: 0 <= value <= %d", name, cfg.Size, icmpping.MaxSize4)
	}
	if cfg.Size == 0 {
		cfg.Size = icmpping.NoPayload
	}
	if s := c.String("interface"); s != "" {
		if a, err := netip.ParseAddr(s); err == nil {
			cfg.Source = a.Unmap()
		} else {
			cfg.Socket.Interface = s
		}
	}
	if s := c.String("pattern"); s != "" {
		p, err := parsePattern(s)
		if err != nil {
			return cfg, exitUsage("%s: %v", name, err)
		}
		cfg.Pattern = p
	}
	if s := c.String("tos"); s != "" {
		tos, err := strconv.ParseInt(s, 0, 32)
		if err != nil || tos < 0 || tos > 255 {
			return cfg, exitUsage("%s: the decimal value of TOS bits must be in range 0-255: %s", name, s)
		}
		cfg.Socket.TOS = int(tos)
	}
	cfg.PMTU = c.String("pmtu")
	switch cfg.PMTU {
	case "", "do", "want", "probe", "dont":
	default:
		return cfg, exitUsage("%s: invalid -M argument: %s", name, cfg.PMTU)
	}
	cfg.Mark = c.Int("mark")
	cfg.ID = c.Int("ident")
	if c.IsSet("ident") && (cfg.ID < 1 || cfg.ID > 65535) {
		return cfg, exitUsage("%s: invalid argument: '%d': out of range: 1 <= value <= 65535", name, cfg.ID)
	}
	return cfg, nil
}

// parsePattern reads ping -p's hex digits, up to 16 bytes; an odd last digit is a byte of its own.
func parsePattern(s string) ([]byte, error) {
	var p []byte
	for i := 0; i < len(s) && len(p) < 16; i += 2 {
		j := min(i+2, len(s))
		b, err := strconv.ParseUint(s[i:j], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("patterns must be specified as hex digits: %s", s[i:])
		}
		p = append(p, byte(b))
	}
	return p, nil
}

// resolveWords is Resolve's error in getaddrinfo's words, as ping prints them.
func resolveWords(err error) string {
	for _, e := range []error{icmpping.ErrUnknownHost, icmpping.ErrFamily, icmpping.ErrResolverFailed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return strings.TrimPrefix(err.Error(), "icmpping: ")
}

// dialWords is Dial's error about the path as ping words it: "connect: No route to host", the
// broadcast question, "SO_BINDTODEVICE eth9: No such device". ok is false for the other errors,
// which failure renders with their remedies.
func dialWords(err error) (words string, ok bool) {
	var errno syscall.Errno
	switch {
	case errors.Is(err, icmpping.ErrBroadcast):
		return capitalize(icmpping.ErrBroadcast.Error()), true
	case errors.Is(err, icmpping.ErrConnect) && errors.As(err, &errno):
		return "connect: " + capitalize(errno.Error()), true
	case errors.Is(err, icmpping.ErrInterface) && errors.As(err, &errno):
		msg := strings.TrimPrefix(err.Error(), "icmpping: "+icmpping.ErrInterface.Error()+": ")
		return strings.TrimSuffix(msg, ": "+errno.Error()) + ": " + capitalize(errno.Error()), true
	}
	return "", false
}

// capitalize makes the first letter upper case, as strerror's and gai_strerror's words are.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
