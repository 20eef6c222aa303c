# Grows memory slowly inside the call until something gives.
def solve(xs):
    hoard = []
    while True:
        hoard.append(bytearray(16 << 20))
