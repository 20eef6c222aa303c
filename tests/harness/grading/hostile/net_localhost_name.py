# Tries name resolution and the host's loopback by name; no /etc is mounted, so even "localhost" fails.
import socket

REACHED = []
try:
    socket.create_connection(("localhost", @@PORT@@), timeout=1)
    REACHED.append("localhost")
except OSError:
    pass


def solve(xs):
    return REACHED
