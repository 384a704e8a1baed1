//go:build !linux

package udpping

// readFlags is 0: the read loop's reads wait in the runtime's poller.
const readFlags = 0

// wouldBlock is never true where reads wait.
func wouldBlock(error) bool { return false }

// waitReadable is never called where reads wait.
func (s *Server) waitReadable() error { return nil }
