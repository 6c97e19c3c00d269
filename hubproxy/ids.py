"""Random ids (calls, requests, traces): unique, not secret, so they come from one generator
seeded from the OS once instead of a syscall each. Never use these for keys or tokens."""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))


def random_hex(bits: int) -> str:
    """`bits` random bits as lowercase hex, zero-padded (bits a multiple of 4)."""
    return f"{_random.getrandbits(bits):0{bits // 4}x}"
