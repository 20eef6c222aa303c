# Spins forever inside the call.
def solve(xs):
    while True:
        pass
