"""Streamed pair sampling and sharding: ordered pairs of N items, all of them or a seeded random subset.

Nothing is materialised: the p-th ordered pair of N items is computed from p, and a seeded random subset is
the first `count` positions of a pseudo-random permutation of all N(N-1) pairs (a small Feistel network with
cycle walking), so 1,000 images (999,000 pairs) stream in constant memory, and `--pairs 20` is a prefix of
`--pairs 40` with the same seed. A shard I/N takes the plan positions p with p % N == I: shards are disjoint,
cover the plan, and are the same on every machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from pcclip_cli.core.errors import PcclipError

_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self):
        if self.count < 1:
            raise PcclipError(f"--shard {self.index}/{self.count}: the shard count must be at least 1")
        if not 0 <= self.index < self.count:
            raise PcclipError(f"--shard {self.index}/{self.count}: the index must be between 0 and "
                              f"{self.count - 1} (shards are numbered from 0)")

    def size(self, total: int) -> int:
        """How many of `total` plan positions fall in this shard."""
        return max(0, (total - self.index + self.count - 1) // self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard:
    """`"I/N"` (0 <= I < N) into a Shard; None means the whole plan."""
    if text is None or text == "":
        return Shard()
    left, sep, right = str(text).partition("/")
    try:
        if not sep:
            raise ValueError
        index, count = int(left), int(right)
    except ValueError:
        raise PcclipError(f"--shard {text!r}: write INDEX/COUNT, e.g. 0/4 for the first of 4 shards") from None
    return Shard(index, count)


def pair_count(n: int) -> int:
    return n * (n - 1)


def pair_at(p: int, n: int) -> tuple[int, int]:
    """The p-th ordered pair (i, j), i != j, of n items, in row order: (0,1), (0,2), ..., (1,0), (1,2), ..."""
    i, r = divmod(p, n - 1)
    return i, (r if r < i else r + 1)


def pair_position(i: int, j: int, n: int) -> int:
    return i * (n - 1) + (j if j < i else j - 1)


def _mix(x: int) -> int:
    # splitmix64's finaliser: a cheap, well-spread 64-bit hash.
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class Permutation:
    """A seeded bijection of range(size), evaluated one position at a time in O(1) memory."""

    ROUNDS = 4

    def __init__(self, size: int, seed: int):
        if size < 1:
            raise ValueError("empty permutation")
        self.size = size
        bits = max(2, (size - 1).bit_length())
        self.half = (bits + 1) // 2
        self.mask = (1 << self.half) - 1
        digest = hashlib.blake2b(f"pcclip-pairs-{seed}".encode(), digest_size=8 * self.ROUNDS).digest()
        self.keys = [int.from_bytes(digest[8 * k: 8 * k + 8], "little") for k in range(self.ROUNDS)]

    def _feistel(self, x: int) -> int:
        left, right = x >> self.half, x & self.mask
        for key in self.keys:
            left, right = right, left ^ (_mix(right ^ key) & self.mask)
        return (left << self.half) | right

    def __call__(self, x: int) -> int:
        # Cycle walking: the Feistel domain is at most 4x the size, so this loops ~4 times at worst on average.
        y = self._feistel(x)
        while y >= self.size:
            y = self._feistel(y)
        return y


def plan_size(n: int, count: int | None) -> int:
    total = pair_count(n)
    return total if count is None else count


def check_plan(n: int, count: int | None, what: str = "images") -> None:
    if n < 2:
        raise PcclipError(f"pairs need at least 2 {what}, got {n}")
    if count is not None:
        if count < 1:
            raise PcclipError(f"--pairs must be at least 1, got {count}")
        if count > pair_count(n):
            raise PcclipError(f"--pairs {count} is more than the {pair_count(n)} ordered pairs of {n} {what}; "
                              "drop --pairs to take all of them")


def iter_pairs(n: int, count: int | None = None, seed: int = 0, shard: Shard = Shard()
               ) -> Iterator[tuple[int, int, int]]:
    """Yield (position, i, j) for this shard: all ordered pairs of n items, or `count` seeded random ones."""
    check_plan(n, count)
    total = plan_size(n, count)
    perm = Permutation(pair_count(n), seed) if count is not None else None
    for pos in range(shard.index, total, shard.count):
        p = perm(pos) if perm is not None else pos
        i, j = pair_at(p, n)
        yield pos, i, j
