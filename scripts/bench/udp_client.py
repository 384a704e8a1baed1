# The assignment's UDP ping client, as the handout has students write it: N pings, each the
# text "ping <seq> <timestamp>", one second to wait for each, the reply and its RTT or
# "Packet N is lost", then the maximum, minimum and average RTT and the loss rate. Run as
#   python3 udp_client.py HOST PORT [COUNT [TIMEOUT]]
# (TIMEOUT in seconds, the handout's 1 by default: the proxy's tests wait less per ping).
# It is the test data of pinglab's interoperability tests: pinglab's server must serve it.
import socket
import sys
import time
from datetime import datetime

host, port = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 10
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(timeout)
rtts = []
for seq in range(1, count + 1):
    message = "ping %d %s" % (seq, datetime.now())
    start = time.time()
    s.sendto(message.encode(), (host, port))
    try:
        reply, _ = s.recvfrom(1024)
        rtt = (time.time() - start) * 1000
        rtts.append(rtt)
        print("Reply from %s: %s RTT %.3f ms" % (host, reply.decode(), rtt))
    except socket.timeout:
        print("Packet %d is lost" % seq)
if rtts:
    print("Maximum RTT (in milliseconds) is %.3f" % max(rtts))
    print("Minimum RTT (in milliseconds) is %.3f" % min(rtts))
    print("Average RTT (in milliseconds) is %.3f" % (sum(rtts) / len(rtts)))
print("Packet loss rate: %.1f%%" % ((count - len(rtts)) * 100.0 / count))
