// Command naiveecho is a benchmark fixture for scripts/bench.sh: the naive Go TCP echo server,
// a goroutine per connection reading a chunk and writing it back in upper case, as a student
// would write it first. pinglab's TCP server is measured against it.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: naiveecho host:port")
		os.Exit(2)
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "naiveecho:", err)
		os.Exit(2)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 1024)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(bytes.ToUpper(buf[:n])); err != nil {
					return
				}
			}
		}()
	}
}
