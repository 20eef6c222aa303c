# Tries the grading host's loopback: a TCP server the test runs on 127.0.0.1, then UDP to it.
import socket

REACHED = []
for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM)):
    try:
        s = socket.socket(family, kind)
        s.settimeout(1)
        s.connect(("127.0.0.1", @@PORT@@))
        s.send(b"hello from the sandbox")
        if kind == socket.SOCK_STREAM:
            REACHED.append("tcp")
    except OSError:
        pass


def solve(xs):
    return REACHED
