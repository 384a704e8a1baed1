package plot

import (
	"os"
	"unsafe"

	"codeberg.org/go-fonts/liberation/liberationmonobold"
	"codeberg.org/go-fonts/liberation/liberationmonobolditalic"
	"codeberg.org/go-fonts/liberation/liberationmonoitalic"
	"codeberg.org/go-fonts/liberation/liberationmonoregular"
	"codeberg.org/go-fonts/liberation/liberationsansbold"
	"codeberg.org/go-fonts/liberation/liberationsansbolditalic"
	"codeberg.org/go-fonts/liberation/liberationsansitalic"
	"codeberg.org/go-fonts/liberation/liberationsansregular"
	"codeberg.org/go-fonts/liberation/liberationserifbold"
	"codeberg.org/go-fonts/liberation/liberationserifbolditalic"
	"codeberg.org/go-fonts/liberation/liberationserifitalic"
	"codeberg.org/go-fonts/liberation/liberationserifregular"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gobolditalic"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/sys/unix"
)

// Every process of the pinglab binary, servers included, runs gonum's package initialisation:
// gonum.org/v1/plot parses its twelve Liberation fonts in an init, and go-latex (under
// gonum's text handling) parses four Go fonts in a package variable. Parsing reads the fonts'
// tables, which pulls about 2 MB of the binary's font data into the process's resident set,
// where a server keeps it for nothing. Go has no lazy package initialisation and a plot needs
// gonum's text handling, so the fonts cannot go unparsed; instead, once they are parsed, their
// pages are handed back (MADV_DONTNEED), and the first plot faults in again the pages it reads.
//
// Measured on an idle `pinglab udp server` (VmRSS / RssFile, kB, median of 5): 16,400 / 14,080
// without the release, 14,400 / 12,090 with it; 13,070 / 11,060 for the same binary built
// without plotting at all, the rest of the difference being the code pages of gonum's package
// initialisation and its 180 kB of heap.
func init() { releaseFontPages() }

// fontData are the fonts gonum and go-latex parse at start.
func fontData() [][]byte {
	return [][]byte{
		liberationmonobold.TTF, liberationmonobolditalic.TTF, liberationmonoitalic.TTF, liberationmonoregular.TTF,
		liberationsansbold.TTF, liberationsansbolditalic.TTF, liberationsansitalic.TTF, liberationsansregular.TTF,
		liberationserifbold.TTF, liberationserifbolditalic.TTF, liberationserifitalic.TTF, liberationserifregular.TTF,
		gobold.TTF, gobolditalic.TTF, goitalic.TTF, goregular.TTF,
	}
}

// releaseFontPages drops the resident pages of the font data. Only whole pages inside a font
// are dropped: the data is the binary's (an unwritten private file mapping), so a dropped page
// reads back from the file unchanged, while a page shared with a variable could lose a write.
func releaseFontPages() {
	for _, b := range fontData() {
		if p := wholePages(b); p != nil {
			_ = unix.Madvise(p, unix.MADV_DONTNEED)
		}
	}
}

// wholePages returns the part of b that covers whole pages, or nil.
func wholePages(b []byte) []byte {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	first, last := (start+page-1)&^(page-1), (start+uintptr(len(b)))&^(page-1)
	if first >= last {
		return nil
	}
	return b[first-start : last-start]
}
