package tcpping

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pinglab/pinglab/internal/impair"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
)

// replySeeds are the lines of testdata/tcp/replies.txt: echoes, the server's words, and
// near misses.
func replySeeds(f *testing.F) [][]byte {
	file, err := os.Open(filepath.Join("..", "testdata", "tcp", "replies.txt"))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	var seeds [][]byte
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		seeds = append(seeds, []byte(sc.Text()))
	}
	return seeds
}

// FuzzClientLine feeds the client any line from a server: it never panics, makes at most one
// Packet, a reply only for a line ParseSeq accepts, and a loss or error only for the oldest
// ping outstanding.
func FuzzClientLine(f *testing.F) {
	for _, s := range replySeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c := &Client{rx: make(chan probe.Packet, 4), from: "127.0.0.1:12000", life: context.Background()}
		st := &stream{outstanding: []int{3, 4}}
		c.line(st, line, time.Now())
		if len(c.rx) > 1 {
			t.Fatalf("%q made %d packets", line, len(c.rx))
		}
		if len(c.rx) == 0 {
			return
		}
		p := <-c.rx
		switch p.Kind {
		case probe.KindReply:
			seq, ok := pingmsg.ParseSeq(bytes.TrimSuffix(line, []byte("\r")))
			if !ok || seq != p.Seq {
				t.Fatalf("%q made a reply to %d; ParseSeq says %d, %v", line, p.Seq, seq, ok)
			}
		case probe.KindLost, probe.KindError:
			if p.Seq != 3 || len(st.outstanding) != 1 {
				t.Fatalf("%q made %v for %d, leaving %v; want it for 3, the oldest", line, p.Kind, p.Seq, st.outstanding)
			}
			if p.Kind == probe.KindError && p.Err == nil {
				t.Fatalf("%q made an error with no Err", line)
			}
		default:
			t.Fatalf("%q made a packet of kind %d", line, p.Kind)
		}
	})
}

// FuzzServerEcho sends the server any bytes in any pieces and checks what comes back: all of
// it upper-cased when nothing is dropped; with half the messages swallowed, the upper-cased
// input with parts left out, never bytes out of order or from elsewhere.
func FuzzServerEcho(f *testing.F) {
	for _, s := range replySeeds(f) {
		f.Add(append(s, '\n'), uint8(7), false)
	}
	f.Add(bytes.Repeat([]byte("ping 1 x\n"), 200), uint8(100), true)
	f.Add([]byte("a\nbb\nccc\n\n\ndddd"), uint8(1), true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, in []byte, piece uint8, drop bool) {
		if len(in) > 1<<14 {
			return
		}
		// A server of one connection, the one loop serves.
		s := &Server{cfg: ServerConfig{MaxLineLength: 1 << 15, IdleTimeout: -1, Seed: 1}}
		if drop {
			s.cfg.Drop, s.cfg.DropMode = 0.5, DropSilent
		}
		m, err := impair.New(impair.Config{Drop: s.cfg.Drop, Seed: s.cfg.Seed})
		if err != nil {
			t.Fatal(err)
		}
		s.model = m
		cli, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		srvSide, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := make(chan struct{})
		go func() { defer close(done); (&conn{s: s, c: srvSide, rec: &clientRec{}}).loop(ctx) }()
		go func() {
			step := int(piece)%64 + 1
			for i := 0; i < len(in); i += step {
				if _, err := cli.Write(in[i:min(i+step, len(in))]); err != nil {
					return
				}
			}
			// The end of the input: the server echoes what it has and closes.
			_ = cli.(*net.TCPConn).CloseWrite()
		}()
		_ = cli.SetReadDeadline(time.Now().Add(time.Minute))
		got, err := io.ReadAll(cli)
		if err != nil {
			t.Fatal(err)
		}
		<-done
		want := bytes.Clone(in)
		pingmsg.Upper(want)
		if !drop && !bytes.Equal(got, want) {
			t.Fatalf("echo of %q in pieces of %d: %q", in, int(piece)%64+1, got)
		}
		if !isSubsequence(got, want) {
			t.Fatalf("echo of %q with drops: %q is not the input with parts left out", in, got)
		}
	})
}

// isSubsequence reports whether a is b with some bytes left out.
func isSubsequence(a, b []byte) bool {
	for _, c := range a {
		i := bytes.IndexByte(b, c)
		if i < 0 {
			return false
		}
		b = b[i+1:]
	}
	return true
}

// FuzzClientRead feeds the client's reader a server's whole stream, in pieces: it never panics
// nor hangs, makes at most one packet per ping outstanding (and one per echo line), and what
// it passes on of the server's words carries no control character and no invalid UTF-8.
func FuzzClientRead(f *testing.F) {
	for _, s := range replySeeds(f) {
		f.Add(append(s, '\n'), uint8(5))
	}
	f.Add([]byte("PING 1 X\nERROR \x1b]0;PWNED\x07\r\xff\n"), uint8(3))
	f.Add(bytes.Repeat([]byte("x"), 2000), uint8(200))
	f.Add([]byte("LOST"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		if len(in) > 1<<14 {
			return
		}
		srv, cli := net.Pipe()
		c := &Client{rx: make(chan probe.Packet, 1024), from: "127.0.0.1:12000", life: context.Background(),
			size: DefaultSize, streams: map[*stream]struct{}{}}
		st := &stream{c: cli, outstanding: []int{1, 2, 3}}
		c.wg.Add(1)
		go c.read(st)
		step := int(piece)%64 + 1
		for i := 0; i < len(in); i += step {
			if _, err := srv.Write(in[i:min(i+step, len(in))]); err != nil {
				break
			}
		}
		srv.Close()
		done := make(chan struct{})
		go func() { c.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the reader did not end after the server closed")
		}
		close(c.rx)
		losses := 0
		for p := range c.rx {
			if p.Kind != probe.KindReply {
				losses++
			}
			words := p.Reason
			if p.Err != nil {
				words += p.Err.Reason
			}
			if !utf8.ValidString(words) {
				t.Fatalf("%q made words with invalid UTF-8: %q", in, words)
			}
			for _, r := range words {
				if r < ' ' || r == 0x7f {
					t.Fatalf("%q made words with a control character: %q", in, words)
				}
			}
		}
		if losses > 3 {
			t.Fatalf("%q made %d losses and errors for 3 pings", in, losses)
		}
	})
}
