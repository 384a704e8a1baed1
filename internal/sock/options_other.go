//go:build !linux

package sock

import (
	"errors"
	"fmt"
	"runtime"
)

var errOptions = errors.New("ttl, tos and interface settings are not supported")

// Apply sets o on the socket fd; on this system only the zero Options can be applied.
func (o Options) Apply(fd int, v6 bool) error {
	if o.IsZero() {
		return nil
	}
	return fmt.Errorf("%w on %s/%s", errOptions, runtime.GOOS, runtime.GOARCH)
}
