package pingmsg

import "fmt"

var (
	// ErrSizeSmall is a size below the message of probe 1 (MinSize).
	ErrSizeSmall = fmt.Errorf("size too small for the message (at least %d bytes)", MinSize)
	// ErrSizeOneWay is a size without room for the one-way receipt, which the server writes
	// over the request's padding (a reply is never longer than its request).
	ErrSizeOneWay = fmt.Errorf("one-way receipts need a size of at least %d bytes", OneWaySize)
)

// ClientSize returns the payload size of a UDP or TCP client's pings for a configured size:
// size itself, or for 0 DefaultSize (OneWaySize when oneWay). A size below MinSize (or, with
// oneWay, below OneWaySize) is an error wrapping ErrSizeSmall (ErrSizeOneWay); one above max
// wraps tooLarge, the transport's own words for its limit.
func ClientSize(size, max int, oneWay bool, tooLarge error) (int, error) {
	switch {
	case oneWay && size == 0:
		return OneWaySize, nil
	case oneWay && size < OneWaySize:
		return 0, fmt.Errorf("%w, not %d", ErrSizeOneWay, size)
	case size == 0:
		return DefaultSize, nil
	case size < MinSize:
		return 0, fmt.Errorf("%w, not %d", ErrSizeSmall, size)
	case size > max:
		return 0, fmt.Errorf("%w, not %d", tooLarge, size)
	}
	return size, nil
}
