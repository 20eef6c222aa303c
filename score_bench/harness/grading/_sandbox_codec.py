"""The value codec of the sandbox protocol: plain data <-> tagged JSON, and newline-framed pipe messages.

Both sides of a call use it: the checker encodes arguments and decodes results, the program's sandbox the
reverse. Decoding trusts nothing: it rebuilds only plain values (None/bool/int/float/str/bytes/list/tuple/
dict/set/frozenset/complex/range, and iterators over them), never runs eval or pickle, and turns anything
malformed into ProtocolError. Ints past 2**62 travel as hex, which converts in linear time with no digit limit.

Stdlib only: inside the sandbox this source is prepended to _sandbox_child's and run with `python -I -S -c`.
"""

import json
import math
import os

SMALL_INT = 1 << 62
MAX_ITEMS = 1_000_000
"""Items materialised from a returned iterator before it counts as unserialisable."""


class ProtocolError(Exception):
    """A message that is not valid tagged JSON: the program's fault (it controls what it sends)."""


class Unserialisable:
    """Stands for a result that could not cross the boundary: equal to nothing, no truth value, no order."""

    __slots__ = ("type_name",)
    __hash__ = None

    def __init__(self, type_name):
        self.type_name = str(type_name)[:100]

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    def __bool__(self):
        raise TypeError(f"an unserialisable {self.type_name} has no truth value")

    def __repr__(self):
        return f"<unserialisable {self.type_name}>"


def encode(value, strict=False):
    """Plain data -> JSON-able tree. Exact types only: a subclass (rigged __eq__) is unserialisable, which
    is a TypeError when `strict` (arguments the tests pass must cross intact)."""
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -SMALL_INT < value < SMALL_INT else {"I": hex(value)}
    if kind is float:
        return value if math.isfinite(value) else {"F": repr(value)}
    if kind is list:
        return [encode(v, strict) for v in value]
    if kind is tuple:
        return {"T": [encode(v, strict) for v in value]}
    if kind is dict:
        return {"D": [[encode(k, strict), encode(v, strict)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"S" if kind is set else "Z": [encode(v, strict) for v in value]}
    if kind is bytes:
        return {"B": [value.hex()]}
    if kind is complex:
        return {"C": [encode(value.real), encode(value.imag)]}
    if kind is range:
        return {"R": [value.start, value.stop, value.step]}
    if hasattr(kind, "__next__") and getattr(kind, "__module__", "") == "builtins":
        items = []
        for item in value:  # generators, map, zip, ...: what a caller iterating them would see
            if len(items) >= MAX_ITEMS:
                break
            items.append(item)
        else:
            return {"G": [encode(v, strict) for v in items]}
    if strict:
        raise TypeError(f"a {kind.__name__} is not plain data")
    return {"O": getattr(kind, "__qualname__", "object")}


def encode_safely(value):
    try:
        return encode(value)
    except Exception as err:  # RecursionError on cycles, errors raised while iterating a generator
        return {"O": f"{type(value).__name__} ({type(err).__name__} while serialising)"}


def decode(tree):
    """JSON tree -> plain Python values. Never eval or pickle; anything malformed is a ProtocolError."""
    kind = type(tree)
    if tree is None or kind is bool or kind is int or kind is float or kind is str:
        return tree
    if kind is list:
        return [decode(v) for v in tree]
    if kind is not dict or len(tree) != 1:
        raise ProtocolError("malformed value")
    (tag, body), = tree.items()
    if tag == "O":
        return Unserialisable(body)
    if tag == "I" and type(body) is str and body.lstrip("-").startswith("0x"):
        return int(body, 16)
    if tag == "F" and body in ("nan", "inf", "-inf"):
        return float(body)
    if type(body) is not list:
        raise ProtocolError(f"malformed {tag!r} value")
    if tag == "T":
        return tuple(decode(v) for v in body)
    if tag == "D":
        if not all(type(p) is list and len(p) == 2 for p in body):
            raise ProtocolError("malformed dict")
        return {decode(k): decode(v) for k, v in body}
    if tag == "S":
        return {decode(v) for v in body}
    if tag == "Z":
        return frozenset(decode(v) for v in body)
    if tag == "B" and len(body) == 1 and type(body[0]) is str:
        return bytes.fromhex(body[0])
    if tag == "C" and len(body) == 2 and all(type(decode(v)) is float for v in body):
        return complex(decode(body[0]), decode(body[1]))
    if tag == "R" and len(body) == 3 and all(type(v) is int for v in body):
        return range(*body)
    if tag == "G":
        return iter([decode(v) for v in body])
    raise ProtocolError(f"unknown tag {tag!r}")


def dumps(obj):
    return (json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


class LineReader:
    """Newline-framed messages from a pipe, each capped so a flood cannot exhaust the reader's memory."""

    def __init__(self, fd, cap):
        self.fd, self.cap, self.buf = fd, cap, bytearray()

    def read(self):
        """The next line without its newline, or None at end of file."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 1]
                return line
            if len(self.buf) > self.cap:
                raise ProtocolError(f"message larger than {self.cap} bytes")
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
