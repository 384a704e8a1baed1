// Package exporter is pinglab's Prometheus prober: it probes a configured list of targets
// continuously over ICMP, UDP or TCP, each on its own schedule, through the one probe engine,
// and exports what happened as the same series the clients' --metrics serve. A blackbox-style
// handler runs one round on demand.
package exporter

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/internal/sock"
	"github.com/pinglab/pinglab/tcpping"
	"github.com/pinglab/pinglab/udpping"
)

// The protocols a target is probed with.
const (
	ICMP       = "icmp"
	UDP        = "udp"
	TCP        = "tcp"         // echo over a connection, as pinglab tcp ping
	TCPConnect = "tcp-connect" // connect only: any listener answers
)

var protocols = []string{ICMP, UDP, TCP, TCPConnect}

// Defaults of a target's settings, where neither it nor the file's defaults say.
const (
	DefaultInterval = 15 * time.Second
	DefaultCount    = 1
	DefaultSpacing  = 100 * time.Millisecond
	DefaultTimeout  = time.Second
)

// maxConfigBytes bounds the file read; a list of thousands of targets fits in far less.
const maxConfigBytes = 4 << 20

// maxCount bounds the probes of one round.
const maxCount = 1000

// Settings say how a target is probed. The zero value of a field means "not set here".
type Settings struct {
	// Protocol is icmp, udp, tcp (echo) or tcp-connect.
	Protocol string
	// Interval is the time from one round's start to the next's; rounds start on a fixed
	// schedule, so they do not drift by the time a round takes.
	Interval time.Duration
	// Count is how many probes a round sends, Spacing apart.
	Count   int
	Spacing time.Duration
	// Timeout is how long each probe waits for its reply.
	Timeout time.Duration
	// Size is the payload size; 0 is the protocol's default (ping's 56 bytes, the UDP and TCP
	// pinger's 40).
	Size int
	// TTL (hop limit) and TOS (traffic class) of the probes; 0 keeps the system's.
	TTL, TOS int
	// Source is the local address probes leave from; Interface the device they are bound to.
	Source    netip.Addr
	Interface string
	// Connect is the TCP echo's connection use: keep (one connection) or per-ping.
	Connect string
}

// A Target is one target of the configuration and how it is probed.
type Target struct {
	// Addr is what is probed: a host for icmp, host:port for udp and tcp.
	Addr string
	Settings
	// Line is the configuration line the target is on.
	Line int
}

// Key names a target's series: its address and protocol, unique in a configuration.
func (t Target) Key() string { return t.Protocol + " " + t.Addr }

// RoundLength is the longest a round of t takes: its last probe leaves (Count-1)×Spacing
// after the first and waits Timeout.
func (s Settings) RoundLength() time.Duration {
	return time.Duration(s.Count-1)*s.Spacing + s.Timeout
}

// A Config is an exporter's configuration: its targets, and the modules /probe may use.
type Config struct {
	Targets []Target
	Modules map[string]Settings
}

// LoadConfig reads and checks the configuration file at path. Its errors name the file and the
// line: "pinglab.yml:12: target 127.0.0.1: count: -1 is below 1".
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("exporter: %s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("exporter: %s: larger than %d bytes", path, maxConfigBytes)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("exporter: %s:%w", path, err)
	}
	return cfg, nil
}

// A lineError is an error at one line of the configuration. Its text starts with the line
// number, so that LoadConfig's "FILE:" before it reads as compilers' "FILE:LINE: ...".
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return strconv.Itoa(e.line) + ": " + e.msg }

func errAt(n *yaml.Node, format string, args ...any) error {
	if n == nil {
		// Settings that come from no file (a /probe module named after a protocol).
		return fmt.Errorf(format, args...)
	}
	return &lineError{n.Line, fmt.Sprintf(format, args...)}
}

// ParseConfig parses and checks a configuration:
//
//	defaults:            # for every target and module; each may set its own
//	  interval: 1s
//	  count: 5
//	targets:
//	  - target: 127.0.0.1
//	    protocol: icmp
//	  - target: 127.0.0.1:12000
//	    protocol: udp
//	    size: 100
//	modules:             # for /probe?target=...&module=NAME
//	  udp5:
//	    protocol: udp
//	    count: 5
func ParseConfig(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	cfg := &Config{Modules: map[string]Settings{}}
	if len(doc.Content) == 0 {
		return nil, &lineError{1, "empty configuration (want targets: and a list)"}
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, errAt(top, "want a mapping with targets:, defaults: and modules:")
	}
	var defaults Settings
	var targetsNode, modulesNode *yaml.Node
	err := eachKey(top, []string{"defaults", "targets", "modules"}, func(key string, k, v *yaml.Node) error {
		switch key {
		case "defaults":
			return parseSettings(v, &defaults, false)
		case "targets":
			targetsNode = v
		case "modules":
			modulesNode = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if targetsNode != nil {
		if targetsNode.Kind != yaml.SequenceNode {
			return nil, errAt(targetsNode, "targets: want a list")
		}
		seen := map[string]int{}
		for _, n := range targetsNode.Content {
			t, err := parseTarget(n, defaults)
			if err != nil {
				return nil, err
			}
			if line, dup := seen[t.Key()]; dup {
				return nil, errAt(n, "target %s over %s is already on line %d", t.Addr, t.Protocol, line)
			}
			seen[t.Key()] = t.Line
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	if modulesNode != nil {
		if modulesNode.Kind != yaml.MappingNode {
			return nil, errAt(modulesNode, "modules: want a mapping of names to settings")
		}
		for i := 0; i+1 < len(modulesNode.Content); i += 2 {
			k, v := modulesNode.Content[i], modulesNode.Content[i+1]
			s := defaults
			if err := parseSettings(v, &s, false); err != nil {
				return nil, err
			}
			if err := check(v, "module "+k.Value, &s); err != nil {
				return nil, err
			}
			if _, dup := cfg.Modules[k.Value]; dup {
				return nil, errAt(k, "module %q defined twice", k.Value)
			}
			cfg.Modules[k.Value] = s
		}
	}
	if len(cfg.Targets) == 0 && len(cfg.Modules) == 0 {
		return nil, errAt(top, "no targets and no modules: nothing to probe")
	}
	return cfg, nil
}

// yamlError turns the parser's "yaml: line 3: ..." into a lineError.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, aerr := strconv.Atoi(rest[:i]); aerr == nil {
				return &lineError{n, strings.TrimSpace(rest[i+1:])}
			}
		}
	}
	return &lineError{1, msg}
}

// eachKey calls fn for each key of the mapping n, which must be among allowed.
func eachKey(n *yaml.Node, allowed []string, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return errAt(n, "want a mapping (key: value lines)")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			return errAt(k, "unknown field %q (want one of %s)", k.Value, strings.Join(allowed, ", "))
		}
		if seen[k.Value] {
			return errAt(k, "%s given twice", k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

var settingKeys = []string{"protocol", "interval", "count", "spacing", "timeout", "size", "ttl", "tos", "source", "interface", "connect"}

// parseSettings reads the fields of n into s; withTarget allows the target: field, which the
// caller reads.
func parseSettings(n *yaml.Node, s *Settings, withTarget bool) error {
	keys := settingKeys
	if withTarget {
		keys = append([]string{"target"}, keys...)
	}
	return eachKey(n, keys, func(key string, k, v *yaml.Node) error {
		if v.Kind != yaml.ScalarNode {
			return errAt(v, "%s: want a single value", key)
		}
		var err error
		switch key {
		case "target":
		case "protocol":
			if !slices.Contains(protocols, v.Value) {
				return errAt(v, "protocol: %q is not one of %s", v.Value, strings.Join(protocols, ", "))
			}
			s.Protocol = v.Value
		case "interval":
			s.Interval, err = duration(v)
		case "spacing":
			s.Spacing, err = duration(v)
		case "timeout":
			s.Timeout, err = duration(v)
		case "count":
			s.Count, err = integer(v, 1, maxCount)
		case "size":
			s.Size, err = integer(v, 1, 65535)
		case "ttl":
			s.TTL, err = integer(v, 1, 255)
		case "tos":
			s.TOS, err = integer(v, 0, 255)
		case "source":
			s.Source, err = netip.ParseAddr(v.Value)
			if err != nil {
				return errAt(v, "source: %q is not an IP address", v.Value)
			}
		case "interface":
			if v.Value == "" || len(v.Value) > 15 || strings.ContainsAny(v.Value, "/ \t") {
				return errAt(v, "interface: %q is not an interface name", v.Value)
			}
			s.Interface = v.Value
		case "connect":
			if v.Value != "keep" && v.Value != "per-ping" {
				return errAt(v, "connect: %q is not keep or per-ping", v.Value)
			}
			s.Connect = v.Value
		}
		if err != nil {
			return errAt(v, "%s: %v", key, err)
		}
		return nil
	})
}

func duration(v *yaml.Node) (time.Duration, error) {
	d, err := time.ParseDuration(v.Value)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want 500ms, 1s, 1m)", v.Value)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not above 0", v.Value)
	}
	return d, nil
}

func integer(v *yaml.Node, lo, hi int) (int, error) {
	n64, err := strconv.ParseInt(v.Value, 0, 64)
	n := int(n64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v.Value)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

func parseTarget(n *yaml.Node, defaults Settings) (Target, error) {
	t := Target{Settings: defaults, Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return t, errAt(n, "a target is a mapping with target: and protocol:")
	}
	if err := parseSettings(n, &t.Settings, true); err != nil {
		return t, err
	}
	var addrNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "target" {
			addrNode = n.Content[i+1]
		}
	}
	if addrNode == nil || strings.TrimSpace(addrNode.Value) == "" {
		return t, errAt(n, "a target needs target: (a host, or host:port)")
	}
	t.Addr = addrNode.Value
	if err := check(addrNode, "target "+t.Addr, &t.Settings); err != nil {
		return t, err
	}
	if t.Protocol != ICMP && !hasPort(t.Addr) {
		return t, errAt(addrNode, "target %s: %s needs host:port", t.Addr, t.Protocol)
	}
	return t, nil
}

func hasPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != ""
}

// check fills in the defaults of s and checks that its settings fit together.
func check(n *yaml.Node, what string, s *Settings) error {
	if s.Protocol == "" {
		return errAt(n, "%s: no protocol (want one of %s)", what, strings.Join(protocols, ", "))
	}
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.Count == 0 {
		s.Count = DefaultCount
	}
	if s.Spacing == 0 {
		s.Spacing = DefaultSpacing
	}
	if s.Timeout == 0 {
		s.Timeout = min(DefaultTimeout, s.Interval-time.Duration(s.Count-1)*s.Spacing)
		if s.Timeout <= 0 {
			s.Timeout = DefaultTimeout
		}
	}
	if lo, hi := sizeRange(s.Protocol); s.Size != 0 && (s.Size < lo || s.Size > hi) {
		return errAt(n, "%s: size: %d is outside %d..%d for %s", what, s.Size, lo, hi, s.Protocol)
	}
	if s.Connect != "" && s.Protocol != TCP {
		return errAt(n, "%s: connect: applies to protocol tcp only", what)
	}
	if l := s.RoundLength(); l > s.Interval {
		return errAt(n, "%s: a round of %d probes %v apart with a %v timeout takes %v, longer than its interval %v",
			what, s.Count, s.Spacing, s.Timeout, l, s.Interval)
	}
	return nil
}

// sizeRange is the payload sizes protocol takes.
func sizeRange(protocol string) (lo, hi int) {
	switch protocol {
	case ICMP:
		return icmpping.MinSize, icmpping.MaxSize4
	case UDP:
		return udpping.MinSize, udpping.MaxSize
	case TCP:
		return tcpping.MinSize, tcpping.MaxSize
	}
	return 0, 65535
}

// socket returns the socket options of s.
func (s Settings) socket() sock.Options {
	return sock.Options{TTL: s.TTL, TOS: s.TOS, Interface: s.Interface}
}
