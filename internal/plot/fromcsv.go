package plot

import (
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/report"
)

// FromRun returns the series of a saved run (report.ReadCSV's) from the engine's events the
// file records, labelled label, or by the run's Label when label is "".
func FromRun(run report.Run, label string) Series {
	if label == "" {
		label = run.Label()
	}
	s := Series{Label: label, Proto: run.Proto, Target: run.Target, Points: make([]Point, 0, len(run.Rows))}
	for _, ev := range run.Events() {
		if ev.Type == probe.EventSent {
			s.Sent++
			continue
		}
		if p, ok := FromEvent(ev); ok {
			s.Points = append(s.Points, p)
		}
	}
	return s
}
