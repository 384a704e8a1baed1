package plot

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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

// WriteTable writes one row per run with its statistics (computed as a live run's, by
// Series.Summary): as a Markdown table ("markdown", ready to paste into a lab report, RTTs in
// ms) or as CSV ("csv", for a spreadsheet, with the unit in each column's name).
func WriteTable(w io.Writer, format string, runs []Series) error {
	rows := make([][]string, 0, len(runs))
	for _, s := range runs {
		rows = append(rows, tableRow(s, s.Summary(), format == "csv"))
	}
	var err error
	switch format {
	case "markdown":
		err = writeMarkdown(w, rows)
	case "csv":
		err = writeTableCSV(w, rows)
	default:
		return fmt.Errorf("plot: %w %q (want %s)", errTableFormat, format, strings.Join(TableFormats, " or "))
	}
	if err != nil {
		return fmt.Errorf("plot: write table: %w", err)
	}
	return nil
}

// tableRow is a run's row; forCSV prints the loss as ping does (%g, no sign) for a spreadsheet
// to compute with, else with one decimal and a percent sign for people.
func tableRow(s Series, sum stats.Summary, forCSV bool) []string {
	loss := percent(sum.Loss)
	if forCSV {
		loss = strconv.FormatFloat(sum.Loss, 'g', 6, 64)
	}
	row := []string{
		s.Label, s.Target, s.Proto,
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
		row = append(row, millis(d))
	}
	return row
}

// millis prints a whole number of microseconds as milliseconds, as ping's summary does.
func millis(d time.Duration) string {
	us := int64(d / time.Microsecond)
	return fmt.Sprintf("%d.%03d", us/1000, us%1000)
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
			// A pipe in a label or target would end the cell early.
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
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
