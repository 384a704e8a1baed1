package lossy

import (
	"errors"
	"math"
	"testing"
)

// FuzzParseSpec feeds parseSpec arbitrary rule tags: what it reads back from a ruleset that
// anyone with CAP_NET_ADMIN may have edited (the seeds in testdata/fuzz are tags pinglab
// writes). It must not panic; it returns a valid Drop or Reject, or an error wrapping errSpec;
// and what it accepts, written back as a tag, reads back to the same tag.
func FuzzParseSpec(f *testing.F) {
	f.Add("pinglab drop prob=0.2 dir=in proto=udp port=12000")
	f.Fuzz(func(t *testing.T, tag string) {
		d, r, err := parseSpec(tag)
		if err != nil {
			if !errors.Is(err, errSpec) || d != nil || r != nil {
				t.Fatalf("parseSpec(%q) = %v, %v, %v: want only an error wrapping errSpec", tag, d, r, err)
			}
			return
		}
		var spec string
		switch {
		case d != nil && r == nil:
			if err := d.Validate(); err != nil {
				t.Fatalf("parseSpec(%q) = invalid %+v: %v", tag, d, err)
			}
			spec = d.spec()
		case r != nil && d == nil:
			if err := r.Validate(); err != nil {
				t.Fatalf("parseSpec(%q) = invalid %+v: %v", tag, r, err)
			}
			spec = r.spec()
		default:
			t.Fatalf("parseSpec(%q) = %v, %v: want exactly one rule", tag, d, r)
		}
		d2, r2, err := parseSpec(spec)
		if err != nil {
			t.Fatalf("parseSpec(%q) accepted, but its tag %q does not read back: %v", tag, spec, err)
		}
		again := ""
		if d2 != nil {
			again = d2.spec()
		} else {
			again = r2.spec()
		}
		if again != spec {
			t.Fatalf("tag %q reads back as %q", spec, again)
		}
	})
}

// FuzzParseRate feeds ParseRate arbitrary rates, as --rate takes them from the command line
// (the seeds in testdata/fuzz are tc's units). It must not panic, accepts only rates of at least
// a byte per second (0 is netem's "no limit"),
// and FormatRate's text of what it accepted reads back to the same rate, up to float rounding.
func FuzzParseRate(f *testing.F) {
	f.Add("1mbit")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			if !errors.Is(err, errRate) {
				t.Fatalf("ParseRate(%q): %v does not wrap errRate", s, err)
			}
			return
		}
		if v == 0 || v > math.MaxUint64/2 {
			t.Fatalf("ParseRate(%q) = %d without error: want 1 to MaxUint64/2 (0 is netem's no limit)", s, v)
		}
		back, err := ParseRate(FormatRate(v))
		if err != nil {
			t.Fatalf("ParseRate(%q) = %d, but FormatRate's %q does not read back: %v", s, v, FormatRate(v), err)
		}
		if diff := math.Abs(float64(back) - float64(v)); diff > 1+float64(v)*1e-12 {
			t.Fatalf("ParseRate(%q) = %d, FormatRate %q reads back as %d", s, v, FormatRate(v), back)
		}
	})
}
