package plot

import (
	"path/filepath"
	"strings"

	"github.com/pinglab/pinglab/internal/report"
)

// FromRun returns the series of a saved run (report.ReadCSV's), labelled label, or by the
// run's file name without its directory and ".csv" when label is "".
func FromRun(run report.Run, label string) Series {
	if label == "" {
		label = strings.TrimSuffix(filepath.Base(run.Name), ".csv")
	}
	s := Series{Label: label, Proto: run.Proto, Target: run.Target, Points: make([]Point, 0, len(run.Rows))}
	for _, row := range run.Rows {
		s.Points = append(s.Points, Point{Seq: row.Seq, Sent: row.Sent, Status: row.Status, RTT: row.RTT})
	}
	return s
}
