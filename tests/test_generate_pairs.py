"""Pair sampling: a bijection, seeded subsets without repeats, shards that partition, constant memory."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcclip_cli.core.errors import PcclipError
from pcclip_cli.data.pairs import (
    Permutation,
    Shard,
    iter_pairs,
    pair_at,
    pair_count,
    pair_position,
    parse_shard,
)


@given(st.integers(2, 400), st.data())
def test_pair_index_is_a_bijection(n, data):
    p = data.draw(st.integers(0, pair_count(n) - 1))
    i, j = pair_at(p, n)
    assert 0 <= i < n and 0 <= j < n and i != j
    assert pair_position(i, j, n) == p


@settings(max_examples=40)
@given(st.integers(1, 3000), st.integers(0, 2**32))
def test_permutation_is_a_bijection(size, seed):
    perm = Permutation(size, seed)
    assert sorted(perm(x) for x in range(size)) == list(range(size))


@settings(max_examples=40)
@given(st.integers(2, 30), st.integers(0, 1000), st.integers(1, 5), st.data())
def test_shards_partition_a_random_sample(n, seed, shards, data):
    count = data.draw(st.integers(1, pair_count(n)))
    whole = [(i, j) for _, i, j in iter_pairs(n, count, seed)]
    assert len(whole) == count and len(set(whole)) == count  # no pair twice
    parts = [[(i, j) for _, i, j in iter_pairs(n, count, seed, Shard(k, shards))] for k in range(shards)]
    assert sorted(p for part in parts for p in part) == sorted(whole)
    assert [len(p) for p in parts] == [Shard(k, shards).size(count) for k in range(shards)]
    # A smaller sample with the same seed is a prefix of the larger one.
    assert [(i, j) for _, i, j in iter_pairs(n, max(1, count // 2), seed)] == whole[: max(1, count // 2)]


def test_all_pairs_of_1000_stream_in_constant_memory():
    tracemalloc.start()
    stream = iter_pairs(1000)
    first = next(stream)
    seen = 1
    for _ in range(200_000):
        next(stream)
        seen += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert first == (0, 0, 1) and seen == 200_001
    assert peak < 1_000_000  # bytes: nothing proportional to the 999,000 pairs is held


@pytest.mark.parametrize("text, ok", [("0/1", True), ("2/3", True), ("3/2", False), ("2/2", False), ("-1/2", False),
                                      ("1", False), ("a/b", False), ("0/0", False)])
def test_parse_shard(text, ok):
    if ok:
        assert str(parse_shard(text)) == text
    else:
        with pytest.raises(PcclipError, match="--shard"):
            parse_shard(text)
