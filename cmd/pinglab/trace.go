package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/icmpping"
)

func init() { register(traceCommand) }

func traceCommand() *cli.Command {
	return &cli.Command{
		Name:      "trace",
		Usage:     "traceroute with UDP, ICMP or TCP probes, without root (exercise 7)",
		UsageText: "pinglab trace [flags] HOST [PACKETLEN]",
		Description: `Sends probes with TTL 1, 2, 3 ... and prints each hop as traceroute does: the router that
answered "Time to live exceeded" and the round-trip time of each probe, "*" where none came
back, and !H !N !P !X for unreachables. It stops at the destination (an echo reply, or port
unreachable for UDP probes sent to ports from 33434 up) or at the first unreachable. UDP
probes and unprivileged ICMP sockets read the errors from the socket's error queue: no root.

Examples:
   pinglab trace -n 10.0.0.2                    # UDP probes, addresses only
   pinglab trace --proto icmp 10.0.0.2          # echo requests, hop names looked up
   pinglab trace -6 -n -q 1 -w 2 fd00::2        # one probe per hop, 2 s wait
   pinglab trace -n -f 3 -m 10 -p 40000 host    # hops 3 to 10, ports from 40000`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "max-hops", Aliases: []string{"m"}, Value: icmpping.DefaultMaxTTL, Usage: "go up to `MAX` hops"},
			&cli.IntFlag{Name: "queries", Aliases: []string{"q"}, Value: icmpping.DefaultQueries, Usage: "send `N` probes per hop (as traceroute; ping's -q is quiet)"},
			&cli.StringFlag{Name: "wait", Aliases: []string{"w"}, Value: "5,3,10", Usage: "wait up to `MAX` seconds for a probe's answer, but no more than HERE times the round trip of an answer from its hop, nor NEAR times one from a later hop: MAX[,HERE,NEAR] (as traceroute; ping's -w is the run's deadline)"},
			&cli.IntFlag{Name: "first", Aliases: []string{"f"}, Value: 1, Usage: "start at hop `FIRST` (as traceroute; ping's -f is flood)"},
			&cli.BoolFlag{Name: "numeric", Aliases: []string{"n"}, Usage: "print addresses only, look no names up"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Usage: "UDP: send to ports from `PORT` up (33434); -U, -T: send to PORT (53, 80)"},
			&cli.StringFlag{Name: "proto", Value: "udp", Usage: "probe with `PROTO`: udp, udp-port, icmp or tcp"},
			&cli.BoolFlag{Name: "icmp", Aliases: []string{"I"}, Usage: "probe with ICMP echo requests (--proto icmp)"},
			&cli.BoolFlag{Name: "tcp", Aliases: []string{"T"}, Usage: "probe with TCP connection attempts to port 80, as traceroute's tcpconn method (--proto tcp)"},
			&cli.BoolFlag{Name: "udp-port", Aliases: []string{"U"}, Usage: "probe with UDP datagrams to the one port 53 (--proto udp-port)"},
			&cli.IntFlag{Name: "sim-queries", Aliases: []string{"N"}, Value: icmpping.DefaultSimultaneous, Usage: "send up to `N` probes at once"},
			&cli.StringFlag{Name: "sendwait", Aliases: []string{"z"}, Value: "0", Usage: "wait `SENDWAIT` between probes: seconds, or milliseconds above 10"},
			&cli.StringFlag{Name: "source", Aliases: []string{"s"}, Usage: "send from the source address `SRC`"},
			&cli.StringFlag{Name: "interface", Aliases: []string{"i"}, Usage: "send through the device `IFACE`"},
			&cli.IntFlag{Name: "tos", Aliases: []string{"t"}, Usage: "set the type of service (IPv6: traffic class) to `TOS`"},
			&cli.BoolFlag{Name: "dont-fragment", Aliases: []string{"F"}, Usage: "do not fragment probes"},
			&cli.BoolFlag{Name: "ipv4", Aliases: []string{"4"}, Usage: "use IPv4 only"},
			&cli.BoolFlag{Name: "ipv6", Aliases: []string{"6"}, Usage: "use IPv6 only"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text (traceroute's) or json (one record per probe)"},
			&cli.StringFlag{Name: "csv", Usage: "write one row per probe to `FILE`"},
		},
		Action: traceAction,
	}
}

func traceAction(c *cli.Context) error {
	name := c.Command.HelpName
	switch c.Args().Len() {
	case 0:
		return exitUsage("%s: missing HOST (see --help)", name)
	case 1, 2:
	default:
		return exitUsage("%s: one HOST and at most a PACKETLEN expected, got %q", name, c.Args().Slice())
	}
	target := c.Args().First()
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	proto := c.String("proto")
	switch {
	case c.Bool("icmp"):
		proto = "icmp"
	case c.Bool("tcp"):
		proto = "tcp"
	case c.Bool("udp-port"):
		proto = "udp-port"
	}
	cfg := icmpping.TraceConfig{
		Proto:        proto,
		FirstTTL:     c.Int("first"),
		MaxTTL:       c.Int("max-hops"),
		Queries:      c.Int("queries"),
		Port:         c.Int("port"),
		Lookup:       !c.Bool("numeric"),
		Simultaneous: c.Int("sim-queries"),
		DontFragment: c.Bool("dont-fragment"),
	}
	if cfg.Wait, cfg.Here, cfg.Near, err = parseTraceWait(c.String("wait")); err != nil {
		return exitUsage("%s: -w: %v", name, err)
	}
	if cfg.SendWait, err = parseSendWait(c.String("sendwait")); err != nil {
		return exitUsage("%s: -z: %v", name, err)
	}
	if c.Args().Len() == 2 {
		if cfg.Length, err = strconv.Atoi(c.Args().Get(1)); err != nil {
			return exitUsage("%s: packet length %q is not a number", name, c.Args().Get(1))
		}
	}
	if s := c.String("source"); s != "" {
		if cfg.Source, err = netip.ParseAddr(s); err != nil {
			return exitUsage("%s: -s: %q is not an address", name, s)
		}
	}
	cfg.Socket.Interface = c.String("interface")
	cfg.Socket.TOS = c.Int("tos")
	if cfg.Socket.TOS < 0 || cfg.Socket.TOS > 255 {
		return exitUsage("%s: -t: %d is out of range 0..255", name, cfg.Socket.TOS)
	}
	for _, f := range []string{"first", "max-hops", "queries", "port", "sim-queries"} {
		if c.IsSet(f) && c.Int(f) <= 0 {
			return exitUsage("%s: --%s: %d must be above 0", name, f, c.Int(f))
		}
	}
	format := c.String("format")
	if format != "text" && format != "json" {
		return exitUsage("%s: --format: %q (want text or json)", name, format)
	}
	// Every option is checked before the name is looked up and the header printed.
	if err := cfg.CheckOptions(); err != nil {
		return failure(c, err)
	}
	// traceroute takes IPv4 unless told -6 or given an IPv6 address.
	var addr netip.Addr
	if family == "" {
		if addr, err = icmpping.Resolve(c.Context, "ip4", target); errors.Is(err, icmpping.ErrFamily) {
			addr, err = icmpping.Resolve(c.Context, "ip6", target)
		}
	} else {
		addr, err = icmpping.Resolve(c.Context, "ip"+family, target)
	}
	if err != nil {
		return exitUsage("%s: %s: %s", name, target, capitalize(resolveWords(err)))
	}
	cfg.Target = addr
	var csv *traceCSV
	if path := c.String("csv"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return exitUsage("%s: --csv: %v", name, err)
		}
		defer f.Close()
		csv = newTraceCSV(f)
	}
	w := c.App.Writer
	js := &traceJSON{Target: target, Addr: addr.String(), MaxHops: cfg.MaxTTL, PacketLen: cfg.PacketLen(), Hops: []traceJSONHop{}}
	if format == "text" {
		fmt.Fprintf(w, "traceroute to %s (%s), %d hops max, %d byte packets\n", target, addr, max(cfg.MaxTTL, 1), cfg.PacketLen())
	}
	err = icmpping.Trace(c.Context, cfg, func(h icmpping.Hop) {
		if format == "text" {
			writeHop(w, h, cfg.Lookup)
		}
		js.add(h)
		if csv != nil {
			csv.add(h)
		}
	})
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(js)
	}
	if csv != nil {
		if ferr := csv.flush(); ferr != nil {
			return exitUsage("%s: --csv: %v", name, ferr)
		}
	}
	switch {
	case c.Context.Err() != nil:
		return cli.Exit("", 1)
	case err != nil:
		return failure(c, err)
	}
	return nil
}

// parseTraceWait reads traceroute's -w MAX[,HERE,NEAR]: MAX in seconds (or a Go duration),
// HERE and NEAR as factors; those not given keep traceroute's 3 and 10.
func parseTraceWait(s string) (wait time.Duration, here, near float64, err error) {
	parts := strings.Split(s, ",")
	if len(parts) > 3 {
		return 0, 0, 0, fmt.Errorf("%q: want MAX[,HERE,NEAR]", s)
	}
	if wait, err = parseDuration(parts[0]); err != nil {
		return 0, 0, 0, err
	}
	if wait == 0 {
		return 0, 0, 0, fmt.Errorf("the wait must be above 0")
	}
	here, near = icmpping.DefaultHere, icmpping.DefaultNear
	for i, p := range parts[1:] {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, 0, 0, fmt.Errorf("%q is not a factor", p)
		}
		if f == 0 {
			f = -1 // 0 turns the rule off; TraceConfig takes 0 as its default
		}
		if i == 0 {
			here = f
		} else {
			near = f
		}
	}
	return wait, here, near, nil
}

// parseSendWait reads traceroute's -z: seconds, or milliseconds when above 10.
func parseSendWait(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f > 3600 {
		return 0, fmt.Errorf("%q is not a time", s)
	}
	if f > 10 {
		return time.Duration(f * float64(time.Millisecond)), nil
	}
	return time.Duration(f * float64(time.Second)), nil
}

// traceJSON is --format json: the trace, one record per probe.
type traceJSON struct {
	Target    string         `json:"target"`
	Addr      string         `json:"addr"`
	MaxHops   int            `json:"max_hops"`
	PacketLen int            `json:"packet_len"`
	Hops      []traceJSONHop `json:"hops"`
}

type traceJSONHop struct {
	TTL    int              `json:"ttl"`
	Probes []traceJSONProbe `json:"probes"`
}

type traceJSONProbe struct {
	Query      int      `json:"query"`
	Addr       string   `json:"addr,omitempty"`
	Name       string   `json:"name,omitempty"`
	RTTms      *float64 `json:"rtt_ms"`
	ICMPType   *int     `json:"icmp_type,omitempty"`
	ICMPCode   *int     `json:"icmp_code,omitempty"`
	Annotation string   `json:"annotation,omitempty"`
	Reached    bool     `json:"reached,omitempty"`
}

func traceProbeRecord(q int, p icmpping.HopProbe) traceJSONProbe {
	r := traceJSONProbe{Query: q + 1, Annotation: p.Annotation(), Reached: p.Reached, Name: p.Name}
	if p.From.IsValid() {
		r.Addr = p.From.String()
		ms := float64(p.RTT.Nanoseconds()) / 1e6
		r.RTTms = &ms
	}
	if p.Err != nil && p.Err.Type >= 0 {
		typ, code := p.Err.Type, p.Err.Code
		r.ICMPType, r.ICMPCode = &typ, &code
	}
	return r
}

func (j *traceJSON) add(h icmpping.Hop) {
	hop := traceJSONHop{TTL: h.TTL}
	for q, p := range h.Probes {
		hop.Probes = append(hop.Probes, traceProbeRecord(q, p))
	}
	j.Hops = append(j.Hops, hop)
}

// traceCSV is --csv: one row per probe, written as each hop is done.
type traceCSV struct {
	w *csv.Writer
}

func newTraceCSV(w io.Writer) *traceCSV {
	t := &traceCSV{w: csv.NewWriter(w)}
	_ = t.w.Write([]string{"hop", "query", "addr", "name", "rtt_ms", "icmp_type", "icmp_code", "annotation"})
	return t
}

func (t *traceCSV) add(h icmpping.Hop) {
	for q, p := range h.Probes {
		r := traceProbeRecord(q, p)
		row := []string{strconv.Itoa(h.TTL), strconv.Itoa(r.Query), r.Addr, r.Name, "", "", "", r.Annotation}
		if r.RTTms != nil {
			row[4] = strconv.FormatFloat(*r.RTTms, 'f', 3, 64)
		}
		if r.ICMPType != nil {
			row[5], row[6] = strconv.Itoa(*r.ICMPType), strconv.Itoa(*r.ICMPCode)
		}
		_ = t.w.Write(row)
	}
	t.w.Flush()
}

func (t *traceCSV) flush() error {
	t.w.Flush()
	return t.w.Error()
}

// writeHop prints a hop as traceroute does:
//
//	1  10.0.0.1  0.123 ms  0.101 ms  0.099 ms
//	2  * * *
//	3  10.0.2.2  0.301 ms !H  *  10.0.2.2  0.290 ms !H
//
// An address is printed before the first time that follows it, and again where it changes.
func writeHop(w io.Writer, h icmpping.Hop, names bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%2d ", h.TTL)
	var last netip.Addr
	for _, p := range h.Probes {
		if !p.From.IsValid() {
			if p.Err != nil {
				// The probe could not be sent: traceroute shows the mark alone.
				b.WriteString(" *")
				if a := p.Annotation(); a != "" {
					b.WriteString(" " + a)
				}
				continue
			}
			b.WriteString(" *")
			continue
		}
		if p.From != last {
			if names {
				n := p.Name
				if n == "" {
					n = p.From.String()
				}
				fmt.Fprintf(&b, " %s (%s)", n, p.From)
			} else {
				fmt.Fprintf(&b, " %s", p.From)
			}
			last = p.From
		}
		fmt.Fprintf(&b, "  %.3f ms", float64(p.RTT.Nanoseconds())/1e6)
		if a := p.Annotation(); a != "" {
			b.WriteString(" " + a)
		}
	}
	fmt.Fprintln(w, b.String())
}
