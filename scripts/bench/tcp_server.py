# The assignment's threaded TCP echo server: a thread per connection, each echoing what it
# reads in upper case, on the port given as the only argument: a peer of scripts/bench.sh.
import socket
import sys
import threading


def handle(c):
    try:
        while True:
            m = c.recv(1024)
            if not m:
                break
            c.sendall(m.upper())
    except OSError:
        pass  # the benchmark's clients reset their connections at the end
    c.close()


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1024)
while True:
    c, a = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
