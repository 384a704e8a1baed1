package report

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pinglab/pinglab/internal/stats"
)

// TableFormats are the formats of WriteTable, the default first.
var TableFormats = []string{"markdown", "csv"}

var errTableFormat = errors.New("unknown table format")

// tableColumns head the table; RTTs are in milliseconds.
var tableColumns = []string{
	"run", "target", "proto", "sent", "received", "errors", "loss",
	"min", "avg", "max", "mdev", "p50", "p90", "p99", "jitter",
}

// A TableRun is one run in the table of `pinglab report`: its name, what it pinged and its
// statistics.
type TableRun struct {
	Label, Target, Proto string
	Summary              stats.Summary
}

// TableRun returns the run's entry in a table, labelled label, or by its Label when label is
// "", with its statistics computed as the live run computed them (Summary).
func (run Run) TableRun(label string) TableRun {
	if label == "" {
		label = run.Label()
	}
	return TableRun{Label: label, Target: run.Target, Proto: run.Proto, Summary: run.Summary()}
}

// WriteTable writes one row per run with its statistics: as a Markdown table ("markdown", ready
// to paste into a lab report, RTTs in ms) or as CSV ("csv", for a spreadsheet, with the unit in
// each column's name).
func WriteTable(w io.Writer, format string, runs []TableRun) error {
	rows := make([][]string, 0, len(runs))
	for _, r := range runs {
		rows = append(rows, tableRow(r, format == "csv"))
	}
	var err error
	switch format {
	case "markdown":
		err = writeMarkdown(w, rows)
	case "csv":
		err = writeTableCSV(w, rows)
	default:
		return fmt.Errorf("report: %w %q (want %s)", errTableFormat, format, strings.Join(TableFormats, " or "))
	}
	if err != nil {
		return fmt.Errorf("report: write table: %w", err)
	}
	return nil
}

// tableRow is a run's row; forCSV prints the loss as ping does (%g, no sign) for a spreadsheet
// to compute with, else with one decimal and a percent sign for people.
func tableRow(r TableRun, forCSV bool) []string {
	sum := r.Summary
	loss := fmt.Sprintf("%.1f%%", sum.Loss)
	if forCSV {
		loss = strconv.FormatFloat(sum.Loss, 'g', 6, 64)
	}
	row := []string{
		r.Label, r.Target, r.Proto,
		strconv.Itoa(sum.Transmitted), strconv.Itoa(sum.Received), strconv.Itoa(sum.Errors), loss,
	}
	if sum.Received == 0 {
		// No RTT was measured: a blank says so, where 0.000 would claim one.
		for range 8 {
			row = append(row, "")
		}
		return row
	}
	for _, d := range []time.Duration{sum.Min, sum.Avg, sum.Max, sum.Mdev, sum.P50, sum.P90, sum.P99, sum.Jitter} {
		row = append(row, msec(d))
	}
	return row
}

func writeMarkdown(w io.Writer, rows [][]string) error {
	head := make([]string, len(tableColumns))
	align := make([]string, len(tableColumns))
	for i, c := range tableColumns {
		head[i] = c
		if i >= 7 {
			head[i] = c + " (ms)"
		}
		align[i] = "---:"
		if i < 3 {
			align[i] = "---"
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + mdCell(c) + " |")
		}
		b.WriteString("\n")
	}
	line(head)
	line(align)
	for _, r := range rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTableCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	head := make([]string, len(tableColumns))
	for i, c := range tableColumns {
		head[i] = c
		switch {
		case i == 6:
			head[i] = "loss_pct"
		case i >= 7:
			head[i] = c + "_ms"
		}
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write(r); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// mdCell escapes a label or target for a Markdown table cell: a pipe would end the cell early,
// a newline the row, and control characters or invalid UTF-8 have no place in a report; they
// are written as Go escapes (\n, \x1b, \xff).
func mdCell(c string) string {
	var b strings.Builder
	for i, r := range c {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(c[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, c[i])
		case r == '|':
			b.WriteString(`\|`)
		case r < ' ' || r == 0x7f:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
