// Package lossy sets up the loss and reject scenarios of a networking lab on Linux: a netem root
// qdisc (through rtnetlink) and drop / reject rules in one nftables table named "pinglab"
// (through nfnetlink), optionally inside a network namespace; and it builds two- or three-host
// labs out of named network namespaces joined by veth pairs.
//
// It touches only what it owns: the nftables table "pinglab" (created and removed whole, in one
// batch, never a ruleset flush) and the netem qdisc it created with the reserved handle 7067:
// on an interface whose root qdisc was the kernel's default. Every apply starts by clearing
// pinglab's leftovers, so one scenario is active per namespace at a time.
//
// Everything here needs CAP_NET_ADMIN. On systems other than Linux every function returns an
// error naming the system.
package lossy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TableName is the one nftables table (family inet) pinglab owns.
const TableName = "pinglab"

// NetemHandleMajor is the major number of the handle pinglab gives its netem qdisc ("7067:",
// ASCII "pg"); a root qdisc with this handle and kind netem is pinglab's and pinglab removes it.
const NetemHandleMajor = 0x7067

// ruleTag starts the comment every pinglab rule carries.
const ruleTag = "pinglab"

var (
	// ErrNetemMissing is returned when the kernel has no netem qdisc.
	ErrNetemMissing = errors.New("netem is missing in this kernel")
	// ErrPermission is returned when the process lacks CAP_NET_ADMIN.
	ErrPermission = errors.New("needs CAP_NET_ADMIN: run as root (sudo) or give the binary cap_net_admin")
	// ErrForeignQdisc is returned when an interface's root qdisc is neither the kernel's default
	// nor pinglab's, and Force was not set.
	ErrForeignQdisc = errors.New("root qdisc is not the kernel default nor pinglab's")
	// ErrLabExists is returned by LabUp when a namespace of the lab already exists.
	ErrLabExists = errors.New("lab already exists")
	// ErrNoLab is returned by LabStatus and LabExec when the lab (or the host asked for) is not up.
	ErrNoLab = errors.New("no lab is up")

	errShare       = errors.New("must be between 0% and 100%")
	errProto       = errors.New("protocol must be udp, tcp or icmp")
	errPortNoProto = errors.New("a port needs a protocol with ports")
	errDir         = errors.New("direction must be in or out")
	errWith        = errors.New("reject type must be net-unreachable, host-unreachable, proto-unreachable, port-unreachable, admin-prohibited or tcp-reset")
	errResetProto  = errors.New("tcp-reset rejects only tcp")
	errNoDev       = errors.New("an interface is needed")
	errDelay       = errors.New("delay out of range (0 to 60s)")
	errJitter      = errors.New("jitter needs a delay at least as large")
	errReorder     = errors.New("reorder needs a delay (netem reorders by sending some packets without it)")
	errRate        = errors.New("bad rate: want a number with a unit bit, kbit, mbit, gbit, bps, kbps, mbps or gbps (tc's units)")
	errNetns       = errors.New("bad namespace name")
	errHosts       = errors.New("a lab has 2 or 3 hosts")
	errHost        = errors.New("unknown lab host: want client, server or router")
	errSpec        = errors.New("unreadable rule comment")
	errAddr        = errors.New("not an address")
)

// Options says where a scenario applies.
type Options struct {
	// Netns is a network namespace by name (as `ip netns` names it, under /run/netns) or by
	// path; "" is the caller's own namespace.
	Netns string
	// Holder, when set, is the process that will remove the scenario (Hold): an apply marks
	// the scenario with it, so that Hold removes that scenario only, never a newer one that
	// replaced it, and so that Show can tell when its holder is gone.
	Holder *Holder
}

// A Holder is the process that keeps a scenario for a while (--for) and then removes it.
type Holder struct {
	// Gen is the mark of one apply, at random.
	Gen uint64
	// PID is the holder's process; Until when it means to remove the scenario.
	PID   int
	Until time.Time
	// Gone is set by Show when no process PID runs any more (it was killed): the scenario
	// then stays until cleared.
	Gone bool
}

// NewHolder returns the Holder of this process for a scenario held d from now.
func NewHolder(d time.Duration) *Holder {
	return &Holder{Gen: rand.Uint64() | 1, PID: os.Getpid(), Until: time.Now().Add(d).Truncate(time.Second)}
}

// holderTag starts the comment of the rule that carries a Holder's mark.
const holderTag = ruleTag + " holder"

func (h *Holder) tag() string {
	return fmt.Sprintf("%s gen=%016x pid=%d until=%d", holderTag, h.Gen, h.PID, h.Until.Unix())
}

// parseHolder reads a Holder back from its tag.
func parseHolder(tag string) (*Holder, bool) {
	var h Holder
	var until int64
	if _, err := fmt.Sscanf(tag, holderTag+" gen=%x pid=%d until=%d", &h.Gen, &h.PID, &until); err != nil {
		return nil, false
	}
	h.Until = time.Unix(until, 0)
	return &h, true
}

// ErrReplaced is what Hold returns when the scenario it held was replaced by a newer one,
// which it leaves in place.
var ErrReplaced = errors.New("a newer scenario replaced it; left in place")

// NetnsPath returns the file that names the namespace, "" for the caller's own.
func (o Options) NetnsPath() (string, error) {
	return netnsPath(o.Netns)
}

func netnsPath(name string) (string, error) {
	switch {
	case name == "":
		return "", nil
	case strings.ContainsRune(name, '/'):
		return name, nil
	case name == "." || name == ".." || strings.ContainsAny(name, " \t\n\x00"):
		return "", fmt.Errorf("lossy: %q: %w", name, errNetns)
	}
	return filepath.Join("/run/netns", name), nil
}

// Netem is a netem root qdisc: what `tc qdisc replace dev DEV root netem ...` sets up.
// Shares are 0..1 (0.2 is 20%).
type Netem struct {
	Dev       string
	Loss      float64
	LossCorr  float64
	Delay     time.Duration
	Jitter    time.Duration
	Duplicate float64
	Reorder   float64
	Corrupt   float64
	// Rate limits the interface to this many bytes per second; 0 is no limit.
	Rate uint64
	// Force replaces a root qdisc that is neither the kernel's default nor pinglab's.
	Force bool
}

// Validate reports the first thing wrong with n.
func (n Netem) Validate() error {
	if n.Dev == "" {
		return fmt.Errorf("lossy: netem: %w", errNoDev)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"loss", n.Loss}, {"loss correlation", n.LossCorr}, {"duplicate", n.Duplicate}, {"reorder", n.Reorder}, {"corrupt", n.Corrupt}} {
		if err := checkShare(s.v); err != nil {
			return fmt.Errorf("lossy: netem %s %v: %w", s.name, s.v, err)
		}
	}
	if n.Delay < 0 || n.Delay > 60*time.Second {
		return fmt.Errorf("lossy: netem delay %v: %w", n.Delay, errDelay)
	}
	if n.Jitter < 0 || n.Jitter > n.Delay {
		return fmt.Errorf("lossy: netem jitter %v: %w", n.Jitter, errJitter)
	}
	if n.Reorder > 0 && n.Delay == 0 {
		return fmt.Errorf("lossy: netem: %w", errReorder)
	}
	return nil
}

func checkShare(v float64) error {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return errShare
	}
	return nil
}

// Percent prints a share the way tc does: 0.2 is "20%", 0.125 is "12.5%".
func Percent(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e6)/1e4, 'f', -1, 64) + "%"
}

// Drop is random loss as nftables rules: `numgen random mod 100 < P drop`.
type Drop struct {
	// Prob is the share of matching packets dropped, 0..1, in whole percents or, below that, in
	// hundredths of a percent.
	Prob float64
	// Proto is "udp", "tcp", "icmp" (ICMP and ICMPv6) or "" for every packet.
	Proto string
	// Port is this host's port: the destination of packets coming in, the source of packets
	// going out (so that on a server it names the service either way). 0 is every port; a port
	// without Proto means udp and tcp.
	Port uint16
	// From is the other end: the source of packets coming in, the destination of packets going
	// out. The zero Prefix is anyone.
	From netip.Prefix
	// Dir is "in" (the default) or "out".
	Dir string
}

// Validate reports the first thing wrong with d.
func (d Drop) Validate() error {
	if err := checkShare(d.Prob); err != nil {
		return fmt.Errorf("lossy: drop probability %v: %w", d.Prob, err)
	}
	if _, _, err := numgenBounds(d.Prob); err != nil {
		return err
	}
	if err := checkMatch(d.Proto, d.Port); err != nil {
		return err
	}
	if d.Dir != "" && d.Dir != "in" && d.Dir != "out" {
		return fmt.Errorf("lossy: %q: %w", d.Dir, errDir)
	}
	return nil
}

func (d Drop) dir() string {
	if d.Dir == "" {
		return "in"
	}
	return d.Dir
}

// numgenBounds returns the modulus and bound of `numgen random mod M < N` for a share: mod 100
// for whole percents (as the handout writes it), mod 10000 for hundredths of a percent.
func numgenBounds(p float64) (mod, below uint32, err error) {
	if pc := p * 100; math.Abs(pc-math.Round(pc)) < 1e-9 {
		return 100, uint32(math.Round(pc)), nil
	}
	if bp := p * 10000; math.Abs(bp-math.Round(bp)) < 1e-6 {
		return 10000, uint32(math.Round(bp)), nil
	}
	return 0, 0, fmt.Errorf("lossy: drop probability %s: %w", Percent(p), errors.New("finer than a hundredth of a percent"))
}

func checkMatch(proto string, port uint16) error {
	switch proto {
	case "", "udp", "tcp":
	case "icmp":
		if port != 0 {
			return fmt.Errorf("lossy: port %d with icmp: %w", port, errPortNoProto)
		}
	default:
		return fmt.Errorf("lossy: %q: %w", proto, errProto)
	}
	return nil
}

// Reject types, as `iptables -j REJECT --reject-with` and nftables' `reject with` name them.
const (
	NetUnreachable   = "net-unreachable"
	HostUnreachable  = "host-unreachable"
	ProtoUnreachable = "proto-unreachable"
	PortUnreachable  = "port-unreachable"
	AdminProhibited  = "admin-prohibited"
	TCPReset         = "tcp-reset"
)

// RejectTypes lists the values Reject.With takes.
var RejectTypes = []string{NetUnreachable, HostUnreachable, ProtoUnreachable, PortUnreachable, AdminProhibited, TCPReset}

// Reject answers matching packets coming in with an ICMP error (or a TCP reset) instead of
// letting them through, for IPv4 and IPv6. proto-unreachable exists in ICMPv4 only: IPv6 packets
// pass.
type Reject struct {
	With  string
	Proto string
	Port  uint16
	From  netip.Prefix
}

// Validate reports the first thing wrong with r.
func (r Reject) Validate() error {
	found := false
	for _, w := range RejectTypes {
		found = found || w == r.With
	}
	if !found {
		return fmt.Errorf("lossy: %q: %w", r.With, errWith)
	}
	if r.With == TCPReset && r.Proto != "" && r.Proto != "tcp" {
		return fmt.Errorf("lossy: %s with %s: %w", r.With, r.Proto, errResetProto)
	}
	return checkMatch(r.Proto, r.Port)
}

// ParseRejectType reads a reject type, accepting iptables' spellings too: icmp-host-unreachable,
// icmp6-adm-prohibited, tcp-rst.
func ParseRejectType(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"icmp6-", "icmpv6-", "icmpx-", "icmp-"} {
		t = strings.TrimPrefix(t, p)
	}
	switch t {
	case "adm-prohibited", "admin-prohib":
		t = AdminProhibited
	case "addr-unreachable":
		t = HostUnreachable
	case "no-route":
		t = NetUnreachable
	case "prot-unreachable", "protocol-unreachable":
		t = ProtoUnreachable
	case "tcp-rst", "tcp-reset", "reset":
		t = TCPReset
	}
	if slices.Contains(RejectTypes, t) {
		return t, nil
	}
	return "", fmt.Errorf("lossy: %q: %w", s, errWith)
}

// proto is the protocol the rule matches: tcp-reset implies tcp.
func (r Reject) proto() string {
	if r.With == TCPReset {
		return "tcp"
	}
	return r.Proto
}

// State is what pinglab has set in one namespace.
type State struct {
	Netns string
	// Netem lists pinglab's netem qdiscs, one per interface.
	Netem []Netem
	// Drop and Reject are the nftables scenario, read back from the rules' tags.
	Drop   *Drop
	Reject *Reject
	// Table is set when the table "pinglab" exists, even if its rules are unreadable.
	Table bool
	// Rules holds the tags of rules pinglab did not recognise (a newer pinglab's, say).
	Rules []string
	// Holder is the process that holds the scenario (--for), nil when none does.
	Holder *Holder
}

// Empty reports whether pinglab has nothing set.
func (s State) Empty() bool { return len(s.Netem) == 0 && !s.Table }

// Words says in plain words what is set, one line per scenario.
func (s State) Words() []string {
	var w []string
	for _, n := range s.Netem {
		w = append(w, n.Words())
	}
	if s.Drop != nil {
		w = append(w, s.Drop.Words())
	}
	if s.Reject != nil {
		w = append(w, s.Reject.Words())
	}
	for _, r := range s.Rules {
		w = append(w, "an nftables rule tagged "+strconv.Quote(r))
	}
	if h := s.Holder; h != nil {
		if h.Gone {
			w = append(w, fmt.Sprintf("its holder (pid %d, to remove it at %s) is gone: it stays until pinglab lossy clear",
				h.PID, h.Until.Format("15:04:05")))
		} else {
			w = append(w, fmt.Sprintf("held by pid %d until %s", h.PID, h.Until.Format("15:04:05")))
		}
	}
	if s.Table && s.Drop == nil && s.Reject == nil && len(s.Rules) == 0 && s.Holder == nil {
		w = append(w, "the nftables table inet pinglab, with no rules")
	}
	if len(w) == 0 {
		w = append(w, "nothing: packets pass untouched")
	}
	return w
}

// Commands returns the tc and nft commands that set up the same state by hand.
func (s State) Commands() []string {
	var c []string
	pre := ""
	if s.Netns != "" {
		pre = "ip netns exec " + s.Netns + " "
	}
	for _, n := range s.Netem {
		c = append(c, pre+n.Command())
	}
	if s.Drop != nil || s.Reject != nil {
		for _, l := range nftCommands(s.Drop, s.Reject) {
			c = append(c, pre+l)
		}
	}
	return c
}

// Words says what the netem qdisc does.
func (n Netem) Words() string {
	var parts []string
	if n.Loss > 0 {
		p := "drops " + Percent(n.Loss) + " of packets"
		if n.LossCorr > 0 {
			p += " (each loss " + Percent(n.LossCorr) + " correlated with the last)"
		}
		parts = append(parts, p)
	}
	if n.Delay > 0 {
		p := "delays every packet by " + n.Delay.String()
		if n.Jitter > 0 {
			p += " ± " + n.Jitter.String()
		}
		parts = append(parts, p)
	}
	if n.Duplicate > 0 {
		parts = append(parts, "duplicates "+Percent(n.Duplicate))
	}
	if n.Reorder > 0 {
		parts = append(parts, "sends "+Percent(n.Reorder)+" at once, ahead of delayed ones (reordering)")
	}
	if n.Corrupt > 0 {
		parts = append(parts, "corrupts a bit in "+Percent(n.Corrupt))
	}
	if n.Rate > 0 {
		parts = append(parts, "sends at most "+FormatRate(n.Rate))
	}
	if len(parts) == 0 {
		parts = append(parts, "passes packets unchanged")
	}
	return "netem on " + n.Dev + " (packets leaving it): " + strings.Join(parts, ", ")
}

// Command returns the tc command for n.
func (n Netem) Command() string {
	c := fmt.Sprintf("tc qdisc replace dev %s root handle %x: netem", n.Dev, NetemHandleMajor)
	if n.Delay > 0 {
		c += " delay " + tcTime(n.Delay)
		if n.Jitter > 0 {
			c += " " + tcTime(n.Jitter)
		}
	}
	if n.Loss > 0 {
		c += " loss " + Percent(n.Loss)
		if n.LossCorr > 0 {
			c += " " + Percent(n.LossCorr)
		}
	}
	if n.Duplicate > 0 {
		c += " duplicate " + Percent(n.Duplicate)
	}
	if n.Reorder > 0 {
		c += " reorder " + Percent(n.Reorder)
	}
	if n.Corrupt > 0 {
		c += " corrupt " + Percent(n.Corrupt)
	}
	if n.Rate > 0 {
		c += " rate " + FormatRate(n.Rate)
	}
	return c
}

func tcTime(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatInt(d.Microseconds(), 10) + "us"
}

// Words says what the drop rule does.
func (d Drop) Words() string {
	w := "drops " + Percent(d.Prob) + " of " + matchWords(d.Proto, d.Port, d.From, d.dir())
	return w + " (nftables, at random)"
}

// Words says what the reject rule does.
func (r Reject) Words() string {
	w := "answers " + matchWords(r.proto(), r.Port, r.From, "in") + " with "
	switch r.With {
	case TCPReset:
		return w + "a TCP reset (the client sees: Connection refused)"
	case ProtoUnreachable:
		return w + "ICMP Destination Protocol Unreachable (IPv4 only; IPv6 packets pass)"
	}
	four, six := rejectWords(r.With)
	return w + "ICMP " + four + " (IPv6: " + six + ")"
}

func rejectWords(with string) (string, string) {
	switch with {
	case NetUnreachable:
		return "Destination Net Unreachable", "No route"
	case HostUnreachable:
		return "Destination Host Unreachable", "Address unreachable"
	case PortUnreachable:
		return "Destination Port Unreachable", "Port unreachable"
	case AdminProhibited:
		return "Packet filtered (administratively prohibited)", "Administratively prohibited"
	}
	return with, with
}

func matchWords(proto string, port uint16, from netip.Prefix, dir string) string {
	what := "packets"
	switch proto {
	case "udp":
		what = "UDP packets"
	case "tcp":
		what = "TCP packets"
	case "icmp":
		what = "ICMP and ICMPv6 packets"
	case "":
		if port != 0 {
			what = "UDP and TCP packets"
		}
	}
	if dir == "out" {
		what += " going out"
		if port != 0 {
			what += fmt.Sprintf(" from port %d", port)
		}
		if from.IsValid() {
			what += " to " + prefixString(from)
		}
		return what
	}
	what += " coming in"
	if port != 0 {
		what += fmt.Sprintf(" to port %d", port)
	}
	if from.IsValid() {
		what += " from " + prefixString(from)
	}
	return what
}

func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// ParsePrefix reads an address or a prefix ("10.77.1.1", "10.77.1.0/24", "fd00:77:1::/64").
func ParsePrefix(s string) (netip.Prefix, error) {
	// netip's own words ("ParseAddr(...): unable to parse IP") name a Go function: the user
	// is told what an address looks like instead.
	if strings.ContainsRune(s, '/') {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("lossy: %w: %q (want a prefix like 10.77.1.0/24 or fd00:77:1::/64)", errAddr, s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("lossy: %w: %q (want an address like 10.77.1.1 or fd00:77:1::1, or a prefix)", errAddr, s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

var rateUnits = []struct {
	suffix string
	bytes  float64 // bytes per second per unit
}{
	{"gbit", 1e9 / 8}, {"mbit", 1e6 / 8}, {"kbit", 1e3 / 8}, {"bit", 1.0 / 8},
	{"gbps", 1e9}, {"mbps", 1e6}, {"kbps", 1e3}, {"bps", 1},
}

// ParseRate reads a rate the way tc does ("1mbit", "100kbit", "500kbps") into bytes per second.
func ParseRate(s string) (uint64, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(l, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		// Below a byte per second ("1bit") would round to 0, which netem takes for no limit;
		// the negated test also refuses NaN ("nanmbit"), which compares false with anything.
		r := math.Round(v * u.bytes)
		if err != nil || !(r >= 1) || r > math.MaxUint64/2 {
			break
		}
		return uint64(r), nil
	}
	return 0, fmt.Errorf("lossy: %q: %w", s, errRate)
}

// FormatRate prints bytes per second in tc's bit units: 125000 is "1mbit".
func FormatRate(bytesPerSec uint64) string {
	bits := float64(bytesPerSec) * 8
	for _, u := range []struct {
		s string
		v float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bits >= u.v {
			return strconv.FormatFloat(bits/u.v, 'f', -1, 64) + u.s
		}
	}
	return strconv.FormatFloat(bits, 'f', -1, 64) + "bit"
}

// spec is the text of a rule's tag: "pinglab drop prob=0.2 proto=udp port=12000 dir=in".
func (d Drop) spec() string {
	s := fmt.Sprintf("%s drop prob=%s dir=%s", ruleTag, strconv.FormatFloat(d.Prob, 'g', -1, 64), d.dir())
	return s + matchSpec(d.Proto, d.Port, d.From)
}

func (r Reject) spec() string {
	return fmt.Sprintf("%s reject with=%s", ruleTag, r.With) + matchSpec(r.Proto, r.Port, r.From)
}

func matchSpec(proto string, port uint16, from netip.Prefix) string {
	s := ""
	if proto != "" {
		s += " proto=" + proto
	}
	if port != 0 {
		s += fmt.Sprintf(" port=%d", port)
	}
	if from.IsValid() {
		s += " from=" + from.String()
	}
	return s
}

// parseSpec reads a rule's tag back.
func parseSpec(s string) (*Drop, *Reject, error) {
	f := strings.Fields(s)
	if len(f) < 2 || f[0] != ruleTag {
		return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
	}
	kv := map[string]string{}
	for _, p := range f[2:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
		}
		kv[k] = v
	}
	var port uint16
	if v, ok := kv["port"]; ok {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
		}
		port = uint16(n)
	}
	var from netip.Prefix
	if v, ok := kv["from"]; ok {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
		}
		from = p
	}
	switch f[1] {
	case "drop":
		prob, err := strconv.ParseFloat(kv["prob"], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
		}
		d := &Drop{Prob: prob, Proto: kv["proto"], Port: port, From: from, Dir: kv["dir"]}
		if d.Validate() != nil {
			return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
		}
		return d, nil, nil
	case "reject":
		r := &Reject{With: kv["with"], Proto: kv["proto"], Port: port, From: from}
		if r.Validate() != nil {
			return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
		}
		return nil, r, nil
	}
	return nil, nil, fmt.Errorf("lossy: %q: %w", s, errSpec)
}
