"""`pcclip filter`: the paper's rules as data, per-rule counts, idempotence, safe writes, the semantic stage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_clean_error
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.filtering.rules import FilterConfig, SemanticOptions, filter_file, load_rules

GOOD = "The cat is smaller and is the color black, while the dog is larger and is white."


def record(text: str, k: int = 0, first="a small black cat", second="a large white dog") -> dict:
    return {"key": f"i{k} -> j{k}", "kind": "pairs", "first": f"i{k}", "second": f"j{k}", "first_caption": first,
            "second_caption": second, "text": text, "llm": "smollm2-135m", "backend": "llamacpp", "prompt": "coco",
            "prompt_sha256": "0" * 64, "params": {"max_tokens": 80}}


def write(path, texts):
    path.write_text("".join(json.dumps(record(t, k)) + "\n" for k, t in enumerate(texts)))
    return path


CASES = [
    (" " + GOOD + "\nQ: What is the visual difference between", GOOD, None, "cut-new-question"),
    ("A: " + GOOD, GOOD, None, "strip-answer-prefix"),
    ("#1: A:  " + GOOD, GOOD, None, "strip-answer-prefix"),
    (GOOD + " Note: I am an AI and cannot see images.", GOOD, None, "cut-note"),
    (GOOD + " I hope this helps!", GOOD, None, "cut-i-hope"),
    (GOOD + " #2: The dog is white.", GOOD, None, "cut-second-answer"),
    (GOOD.replace(" is the color", "\tis  the\ncolor"), GOOD, None, "whitespace"),
    (GOOD.replace("dog's", "dog\u2019s"), GOOD, None, None),
    ("#include <stdio.h>\nint main() { return 0; } " + GOOD, None, "code", None),
    ("\n" * 9 + GOOD, None, "newline-run", None),
    ("The cat is black." + " The dog is white." * 6, None, "repetition", None),
    ("\u732b\u662f\u9ed1\u8272\u7684\uff0c\u72d7\u662f\u767d\u8272\u7684\u3002" * 5, None, "non-ascii", None),
    ("A: The cat is black.", None, "too-short", "strip-answer-prefix"),
    ("Q: What is the visual difference?", None, "too-short", "cut-new-question"),
]


@pytest.mark.parametrize("raw, clean, dropped_by, changed_by", CASES)
def test_default_rules(raw, clean, dropped_by, changed_by):
    text, rule, changed = load_rules().judge(raw)
    assert rule == dropped_by
    if clean is not None:
        assert text == clean
    if changed_by:
        assert changed_by in changed


def test_the_word_notebook_is_not_a_note():
    text = "The first image shows a notebook and a Notebook computer, while the second shows a pen on a desk."
    assert load_rules().judge(text) == (text, None, [])


def test_cli_reports_per_rule_counts_and_never_touches_the_input(cli, tmp_path):
    src = write(tmp_path / "comps.jsonl", [raw for raw, *_ in CASES])
    before = src.read_bytes()
    out = tmp_path / "clean.jsonl"
    res = cli("filter", src, "--out", out, "--json")
    assert res.code == 0, res.stderr
    report = res.json()
    rows = {r["rule"]: r for r in report["rules"]}
    assert report["records"] == len(CASES) and report["kept"] == 8 and report["dropped"] == 6
    assert rows["code"]["dropped"] == 1 and rows["newline-run"]["dropped"] == 1 and rows["repetition"]["dropped"] == 1
    assert rows["too-short"]["dropped"] == 2 and rows["non-ascii"]["dropped"] == 1
    assert rows["cut-new-question"]["changed"] == 2 and rows["strip-answer-prefix"]["changed"] == 3
    assert src.read_bytes() == before
    kept = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["text"] for r in kept] == [GOOD] * 8
    assert kept[0]["key"] == "i0 -> j0" and kept[0]["llm"] == "smollm2-135m"  # other fields kept as they were
    human = cli("filter", src, "--out", tmp_path / "clean2.jsonl")
    assert human.code == 0 and "too-short" in human.stderr and "kept" in human.stderr and human.stdout == ""


def test_filtering_twice_equals_filtering_once(tmp_path):
    src = write(tmp_path / "comps.jsonl", [raw for raw, *_ in CASES])
    once, twice = tmp_path / "once.jsonl", tmp_path / "twice.jsonl"
    filter_file(src, once)
    report = filter_file(once, twice)
    assert twice.read_bytes() == once.read_bytes()
    assert report["dropped"] == 0 and report["changed"] == 0


_pieces = st.sampled_from(["A:", "#1:", "Q:", "Note", " Note:", "I hope", "#2:", "\n", "\t", "  ", "\u2019",
                           "\u201c", "#include", "cat", "dog", "The first image is larger", ", while", ".", " "])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_pieces, st.text(max_size=12)), max_size=30).map("".join))
def test_rules_are_idempotent_on_any_text(text):
    rules = load_rules(min_chars=0)
    clean, dropped, _ = rules.judge(text)
    if dropped is None:
        assert rules.judge(clean) == (clean, None, [])


def test_min_chars_and_custom_rules(tmp_path):
    src = write(tmp_path / "c.jsonl", ["The cat is black, the dog is white.", GOOD, "Nope, " + GOOD])
    out = tmp_path / "o.jsonl"
    assert filter_file(src, out, FilterConfig(min_chars=10))["kept"] == 3
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "no-nope"\naction = "drop"\ncontains = ["Nope"]\n'
                     '[[rules]]\nname = "cat-to-kitten"\naction = "replace"\nregex = "\\\\bcat\\\\b"\nwith = "kitten"\n')
    report = filter_file(src, out, FilterConfig(rules=rules))
    assert report["kept"] == 2 and [r["rule"] for r in report["rules"]] == ["no-nope", "cat-to-kitten"]
    assert all("kitten" in json.loads(ln)["text"] for ln in out.read_text().splitlines())


@pytest.mark.parametrize("body, fragment", [
    ('[[rules]]\nname = "x"\naction = "drop"\ncontians = ["a"]\n', "unknown key(s) contians"),
    ('[[rules]]\nname = "x"\naction = "explode"\ncontains = ["a"]\n', "not one of drop"),
    ('[[rules]]\nname = "x"\naction = "drop"\nregex = "("\n', "bad regex"),
    ('[[rules]]\nname = "x"\naction = "truncate"\ncheck = "min_chars"\n', "must have action"),
    ('rules = 3\n', "no [[rules]]"),
])
def test_bad_rules_files(tmp_path, body, fragment):
    path = tmp_path / "rules.toml"
    path.write_text(body)
    with pytest.raises(PcclipError) as info:
        load_rules(path)
    assert fragment in str(info.value)


def test_bad_input_is_a_clean_error(run_pcclip, tmp_path):
    src = write(tmp_path / "c.jsonl", [GOOD])
    assert_clean_error(run_pcclip("filter", src, "--out", src), "never modifies its input")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(record(GOOD)) + "\n{not json\n")
    out = tmp_path / "o.jsonl"
    assert_clean_error(run_pcclip("filter", broken, "--out", out), "broken.jsonl:2", "malformed JSON")
    assert not out.exists()


def test_semantic_drops_unrelated_texts_and_near_duplicates(tmp_path):
    texts = [GOOD, GOOD.replace("while", "whereas"), "Stock prices rose sharply after the quarterly earnings call.",
             "The dog is bigger and white, and the cat is small and black."]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({**record(t, 0 if k < 3 else 1)}) + "\n" for k, t in enumerate(texts)))
    out = tmp_path / "o.jsonl"
    report = filter_file(src, out, FilterConfig(semantic=True, semantic_options=SemanticOptions(
        min_relevance=0.2, max_similarity=0.95)))
    rows = {r["rule"]: r["dropped"] for r in report["rules"]}
    assert rows["semantic-unrelated"] == 1 and rows["semantic-duplicate"] == 1
    kept = [json.loads(ln)["text"] for ln in out.read_text().splitlines()]
    assert kept == [GOOD, texts[3]]
