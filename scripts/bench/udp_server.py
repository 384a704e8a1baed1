# The assignment's UDP echo server, as the handout gives it (its loop unchanged), on the port
# given as the only argument: a peer of scripts/bench.sh.
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    m, a = s.recvfrom(2048)
    s.sendto(m.upper(), a)
