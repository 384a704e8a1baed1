//go:build !linux

package lossy

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestUnsupportedNamesTheSystem(t *testing.T) {
	want := "not supported on " + runtime.GOOS + "/" + runtime.GOARCH
	for name, err := range map[string]error{
		"CheckNetAdmin": CheckNetAdmin(),
		"ApplyDrop":     ApplyDrop(context.Background(), Options{}, Drop{Prob: 0.2}),
		"Clear":         Clear(context.Background(), Options{}),
		"LabDown":       LabDown(context.Background()),
	} {
		if !errors.Is(err, errUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s() = %v, want an error saying %q", name, err, want)
		}
	}
}
