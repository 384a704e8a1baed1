# The handout's optional UDP heartbeat client, as a student writes it: every INTERVAL seconds
# it sends "heartbeat <seq> <time.time()>" and waits for nothing. Run as
#   python3 heartbeat_client.py HOST PORT COUNT [INTERVAL]
# It is the test data of pinglab's heartbeat tests: pinglab's server must follow it.
import socket
import sys
import time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for seq in range(1, count + 1):
    s.sendto(("heartbeat %d %f" % (seq, time.time())).encode(), (host, port))
    time.sleep(interval)
