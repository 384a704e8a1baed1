//go:build !unix

package tcpping

import "net"

// discardQueued does nothing here: the close may reset a connection with unread input.
func discardQueued(net.Conn) {}
