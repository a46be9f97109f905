"""Property tests (hypothesis): the filter, the prompt renderer, pair sampling and sharding, the JSONL reader.

PCCLIP_HYPOTHESIS_EXAMPLES=5000 searches harder than the default 150 examples per property.
"""

from __future__ import annotations

import json
import os
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pcclip_cli.core.errors import DataError, PcclipError

FAST = settings(max_examples=int(os.environ.get("PCCLIP_HYPOTHESIS_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---- the filter -----------------------------------------------------------------------------------------------

# Pieces that the shipped rules react to, mixed with plain words and arbitrary characters.
FRAGMENTS = ["A:", " A: ", "#1:", "#2:", "Q:", "\nQ: what", "Note", "Note:", "I hope this helps", "#include <x>",
             "#define X", "\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026", "\u00a0", "\u2028",
             "\n", "\n\n\n\n\n\n\n\n\n", "\t", "  ", "\r\n", "the first", "image", "shows", "a larger",
             "red circle", "than the second", ".", ",", "circle circle circle circle", "é", "日本"]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=30).map("".join)


def _records(items: list[str]) -> list[tuple[int, dict]]:
    return [(i + 1, {"key": f"k{i}", "kind": "pairs", "first": f"a{i}", "second": f"b{i}",
                     "first_caption": "a red circle", "second_caption": "a blue star", "text": t})
            for i, t in enumerate(items)]


@FAST
@given(items=st.lists(texts, max_size=12), min_chars=st.one_of(st.none(), st.integers(0, 120)))
def test_filter_never_crashes_and_twice_is_once(items, min_chars):
    from pcclip_cli.filtering.rules import filter_records, load_rules

    rules = load_rules(min_chars=min_chars)
    kept, report = filter_records(_records(items), rules)
    assert report["records"] == len(items)
    dropped = sum(c["dropped"] for c in report["rules"].values())
    assert len(kept) + dropped == len(items)
    again, report2 = filter_records(list(enumerate(kept, start=1)), rules)
    assert again == kept
    assert report2["changed"] == 0 and all(c == {"dropped": 0, "changed": 0} for c in report2["rules"].values())
    for rec in kept:
        assert rec["text"] == rec["text"].strip() and "Q:" not in rec["text"] and "\n" not in rec["text"]


def test_filter_command_twice_gives_the_same_file(cli, tmp_path):
    # Texts the grounded rules keep (their colours and shapes are the captions' own, each on its own image).
    items = ["A: The first image has a red circle and the second image has a blue star.\nQ: next",
             "Note: nothing", "#include <stdio.h>", "The second image shows a blue star, while the first image shows "
             "a red circle.  I hope this helps!"]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for _, r in _records(items)))
    once, twice = tmp_path / "once.jsonl", tmp_path / "twice.jsonl"
    first = cli("filter", src, "--out", once, "--json")
    second = cli("filter", once, "--out", twice, "--json")
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    assert first.json()["kept"] == 2 and second.json()["kept"] == 2 and second.json()["changed"] == 0
    assert once.read_bytes() == twice.read_bytes()


# ---- the prompt renderer ------------------------------------------------------------------------------------------

literal = st.text(alphabet=st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)), max_size=15)
chunk = st.one_of(literal, st.sampled_from(["{{", "}}", "{{x}}", "\n", "Q:"]))


@st.composite
def templates(draw):
    """(kind, template, expected-with-markers): every placeholder of the kind at least once, in random order,
    between literal chunks (escaped braces included)."""
    from pcclip_cli.generation.prompts import PLACEHOLDERS

    kind = draw(st.sampled_from(sorted(PLACEHOLDERS)))
    names = list(PLACEHOLDERS[kind]) + draw(st.lists(st.sampled_from(PLACEHOLDERS[kind]), max_size=3))
    names = draw(st.permutations(names))
    parts = []
    for name in names:
        parts.append(("lit", draw(chunk)))
        parts.append(("ph", name))
    parts.append(("lit", draw(chunk)))
    return kind, parts


@FAST
@given(spec=templates(), values=st.lists(st.text(max_size=20), min_size=3, max_size=3))
def test_render_substitutes_exactly_the_placeholders(spec, values):
    from pcclip_cli.generation.prompts import PLACEHOLDERS, make_prompt

    kind, parts = spec
    template = "".join(t if k == "lit" else "{" + t + "}" for k, t in parts)
    assume(template.strip())
    given_values = dict(zip(PLACEHOLDERS[kind], values, strict=False))
    prompt = make_prompt("p", kind, template)
    expected = "".join(t.replace("{{", "{").replace("}}", "}") if k == "lit" else given_values[t] for k, t in parts)
    # Values are inserted as they are: braces in a caption are never read as placeholders.
    assert prompt.render(**given_values) == expected
    assert prompt.render(**given_values, unused="x") == expected
    assert prompt.sha256 == make_prompt("q", kind, template, description="other").sha256


@FAST
@given(kind=st.sampled_from(["pairs", "classes", "descriptions"]), extra=st.text(
    alphabet=string.ascii_letters + "_", min_size=1, max_size=10))
def test_a_template_with_a_wrong_placeholder_is_refused(kind, extra):
    from pcclip_cli.generation.prompts import PLACEHOLDERS, make_prompt

    assume(extra.isidentifier() and extra not in PLACEHOLDERS[kind])
    full = " ".join("{" + p + "}" for p in PLACEHOLDERS[kind])
    with pytest.raises(DataError, match="unknown placeholder"):
        make_prompt("p", kind, full + " {" + extra + "}")
    with pytest.raises(DataError, match="never uses"):
        make_prompt("p", kind, full.replace("{" + PLACEHOLDERS[kind][-1] + "}", "x"))
    with pytest.raises(PcclipError, match="needs a value"):
        make_prompt("p", kind, full).render()


# ---- pair sampling and sharding -------------------------------------------------------------------------------


@st.composite
def plans(draw):
    n = draw(st.integers(2, 40))
    count = draw(st.one_of(st.none(), st.integers(1, n * (n - 1))))
    return n, count, draw(st.integers(0, 2**32)), draw(st.integers(1, 8))


@FAST
@given(plan=plans())
def test_shards_are_disjoint_and_cover_the_plan(plan):
    from pcclip_cli.data.pairs import Shard, iter_pairs, plan_size

    n, count, seed, shards = plan
    whole = list(iter_pairs(n, count, seed))
    assert len(whole) == plan_size(n, count)
    assert all(0 <= i < n and 0 <= j < n and i != j for _, i, j in whole)
    pairs = [(i, j) for _, i, j in whole]
    assert len(set(pairs)) == len(pairs)  # a sample never repeats a pair
    if count is None:
        assert set(pairs) == {(i, j) for i in range(n) for j in range(n) if i != j}
    parts = [list(iter_pairs(n, count, seed, Shard(s, shards))) for s in range(shards)]
    for s, part in enumerate(parts):
        assert len(part) == Shard(s, shards).size(len(whole))
    merged = sorted(x for part in parts for x in part)
    assert merged == sorted(whole)  # every position exactly once, each with the same pair as unsharded


@FAST
@given(plan=plans(), more=st.integers(0, 50))
def test_a_smaller_sample_is_a_prefix_of_a_larger_one(plan, more):
    from pcclip_cli.data.pairs import iter_pairs

    n, count, seed, _ = plan
    assume(count is not None)
    bigger = min(n * (n - 1), count + more)
    assert list(iter_pairs(n, count, seed)) == list(iter_pairs(n, bigger, seed))[:count]


@FAST
@given(size=st.integers(1, 3000), seed=st.integers(0, 2**40))
def test_the_permutation_is_a_bijection(size, seed):
    from pcclip_cli.data.pairs import Permutation

    perm = Permutation(size, seed)
    assert sorted(perm(x) for x in range(size)) == list(range(size))


@FAST
@given(text=st.one_of(st.text(max_size=12), st.builds(lambda i, n: f"{i}/{n}", st.integers(-3, 12),
                                                       st.integers(-3, 12))))
def test_shard_parsing_accepts_i_of_n_and_refuses_the_rest_cleanly(text):
    from pcclip_cli.data.pairs import parse_shard

    try:
        shard = parse_shard(text)
    except PcclipError as exc:
        assert "--shard" in str(exc) and "\n" not in str(exc)
        return
    if text:
        assert 0 <= shard.index < shard.count
        assert parse_shard(str(shard)) == shard


# ---- the JSONL reader -------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)
records = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("jsonl") / "f.jsonl"


@FAST
@given(recs=st.lists(records, max_size=8), blanks=st.lists(st.sampled_from(["", "  ", "\t", "\r"]), max_size=8),
       crlf=st.booleans(), final_newline=st.booleans(), ascii_only=st.booleans())
def test_jsonl_reader_round_trips_with_line_numbers(scratch, recs, blanks, crlf, final_newline, ascii_only):
    from pcclip_cli.core.io import read_jsonl

    lines, expected = [], []
    for k, rec in enumerate(recs):
        if k < len(blanks):
            lines.append(blanks[k])
        lines.append(json.dumps(rec, ensure_ascii=ascii_only))
        expected.append((len(lines), rec))
    end = "\r\n" if crlf else "\n"
    text = end.join(lines) + (end if final_newline else "")
    scratch.write_bytes(text.encode("utf-8"))
    assert list(read_jsonl(scratch)) == expected


@FAST
@given(data=st.binary(max_size=200) | st.lists(st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\n", b"\xff", b"\xef\xbb\xbf", b"1e999", b"NaN", b"{}", b"[]",
     b'{"a": 1}', b"\\u0000", b"\x00"]), max_size=30).map(b"".join))
def test_jsonl_reader_yields_objects_or_one_clean_error(scratch, data):
    from pcclip_cli.core.io import read_jsonl

    scratch.write_bytes(data)
    try:
        for lineno, rec in read_jsonl(scratch):
            assert isinstance(rec, dict) and lineno >= 1
    except DataError as exc:
        assert str(scratch) in str(exc) and "\n" not in str(exc)


def test_jsonl_reader_refuses_absurd_nesting_cleanly(scratch):
    from pcclip_cli.core.io import read_jsonl

    scratch.write_text('{"a": 1}\n' + "[" * 100_000 + "\n")
    with pytest.raises(DataError, match=":2: JSON nested too deeply"):
        list(read_jsonl(scratch))
