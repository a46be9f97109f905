"""The bad-input matrix: every command, fed a bad file or option, exits 1 with exactly one `error:` line, no
traceback, and leaves the working directory exactly as it was (no new, changed or half-written files).

Each case runs in an empty working directory that holds only the inputs the case writes; outputs are asked for
there (`--out out.jsonl`, `--out idx`, ...) so that a half-written one would be seen. Most cases run in-process
(the `cli` fixture re-raises anything that is not a clean exit, so a traceback fails the case); the ones marked
"proc" run the real executable in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import CliResult, assert_clean_error

MODEL = ["--model", "pcclip-micro"]  # never the default shapes-clip: it would be trained on first use


@pytest.fixture(scope="module")
def assets(world, tmp_path_factory):
    """Read-only inputs shared by the cases, outside their working directories: a micro checkpoint, an index."""
    from pcclip_cli.clip.checkpoints import save_checkpoint
    from pcclip_cli.models import load_clip
    from pcclip_cli.retrieval import build_index

    root = tmp_path_factory.mktemp("bad-input-assets")
    clip = load_clip("pcclip-micro", "cpu")
    ckpt = root / "micro-ckpt"
    save_checkpoint(clip.model, ckpt, arch=clip.arch, meta={})
    index = root / "idx"
    build_index([world / "captions.jsonl"], index, model="pcclip-micro")
    return {"world": world, "ckpt": ckpt, "index": index}


class _Exploit:
    """Unpickling this runs `touch PWNED` in the working directory; the snapshot would see the new file."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _captions_line(world: Path, k: int = 0) -> str:
    rec = json.loads((world / "captions.jsonl").read_text().splitlines()[k])
    return json.dumps({**rec, "image": str(world / rec["image"])})


# ---- what each case writes into its working directory ---------------------------------------------------------


def w_captions_bad_line(d, a):
    (d / "captions.jsonl").write_text(_captions_line(a["world"]) + "\n" + '{"image": "b.png", "caption": \n')


def w_captions_non_utf8(d, a):
    (d / "captions.jsonl").write_bytes(_captions_line(a["world"]).encode() + b"\n"
                                       + b'{"image": "b.png", "caption": "a \xff\xfe red circle"}\n')


def w_empty(name):
    return lambda d, a: (d / name).write_bytes(b"")


def w_text(name, text):
    return lambda d, a: (d / name).write_text(text)


def w_pickle_checkpoint(d, a):
    ck = d / "ckpt"
    ck.mkdir()
    meta = json.loads((a["ckpt"] / "pcclip.json").read_text())
    meta.pop("weights_bytes", None)
    (ck / "pcclip.json").write_text(json.dumps(meta))
    (ck / "model.pt").write_bytes(pickle.dumps({"state_dict": _Exploit()}, protocol=2))


def w_wrong_arch(d, a):
    ck = d / "ckpt"
    ck.mkdir()
    (ck / "model.safetensors").write_bytes((a["ckpt"] / "model.safetensors").read_bytes())
    meta = json.loads((a["ckpt"] / "pcclip.json").read_text())
    meta["arch"] = "pcclip-tiny"
    meta.pop("model_config", None)
    meta.pop("weights_bytes", None)
    (ck / "pcclip.json").write_text(json.dumps(meta))


def w_images(*specs):
    """Image files: ("name", "ok") copies a world image, ("name", b"bytes") writes those bytes."""

    def write(d, a):
        world_image = a["world"] / json.loads((a["world"] / "captions.jsonl").read_text().splitlines()[0])["image"]
        for name, content in specs:
            path = d / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(world_image.read_bytes() if content == "ok" else content)

    return write


def bomb_png(side: int = 20000) -> bytes:
    """A valid PNG header claiming side x side pixels (far past the decoder's limit) with a tiny body: opening it
    must be refused before anything is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def w_comparatives_without_text(d, a):
    (d / "comps.jsonl").write_text(json.dumps({"key": "a -> b", "kind": "pairs", "first": "a", "second": "b"}) + "\n")


def w_task(template_lines: str):
    """An attributes task over the world's captions whose template lines are `template_lines`."""
    return lambda d, a: (d / "task.toml").write_text(
        f'kind = "attributes"\nmanifest = "{a["world"]}/captions.jsonl"\nattributes = ["colour", "shape"]\n'
        + template_lines)


def w_many(*writers):
    def write(d, a):
        for w in writers:
            w(d, a)

    return write


# ---- the cases ------------------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    args: list  # strings; "{world}", "{ckpt}", "{index}" are filled in
    fragment: str  # must appear in the error line
    write: object = None
    env: dict = field(default_factory=dict)  # None values unset the variable
    proc: bool = False  # run the real executable in a subprocess
    marks: tuple = ()


CAPTIONS = "{world}/captions.jsonl"
GEN = ["generate", "--llm", "template", "--out", "out.jsonl"]
PROMPT_KEYS = 'kind = "pairs"\ntemplate = "{first_caption} / {second_caption}"\n'

CASES = [
    # generate
    Case("generate/missing captions file", GEN + ["--captions", "nope.jsonl"], "not found"),
    Case("generate/zero-byte captions", GEN + ["--captions", "captions.jsonl"], "is empty", w_empty("captions.jsonl")),
    Case("generate/malformed JSONL line", GEN + ["--captions", "captions.jsonl"], "captions.jsonl:2: malformed JSON",
         w_captions_bad_line),
    Case("generate/non-UTF-8 caption", GEN + ["--captions", "captions.jsonl"], ":2: not valid UTF-8",
         w_captions_non_utf8),
    Case("generate/unknown LLM", ["generate", "--llm", "llama-9000", "--captions", CAPTIONS, "--out", "out.jsonl"],
         "unknown LLM 'llama-9000'"),
    Case("generate/shard out of range", GEN + ["--captions", CAPTIONS, "--shard", "4/4"], "between 0 and 3"),
    Case("generate/pairs out of range", GEN + ["--captions", CAPTIONS, "--pairs", "0"], "--pairs must be at least 1"),
    Case("generate/temperature out of range", GEN + ["--captions", CAPTIONS, "--temperature", "9"],
         "--temperature must be between 0 and 5"),
    Case("generate/missing API key", ["generate", "--llm", "gpt-4o-mini", "--captions", CAPTIONS, "--out",
                                      "out.jsonl"], "OPENAI_API_KEY is not set", env={"OPENAI_API_KEY": None},
         proc=True),
    Case("generate/prompt TOML with an unknown key", GEN + ["--captions", CAPTIONS, "--prompt", "p.toml"],
         "unknown key(s) colour", w_text("p.toml", PROMPT_KEYS + 'colour = "red"\n')),
    Case("generate/malformed prompt TOML", GEN + ["--captions", CAPTIONS, "--prompt", "p.toml"], "malformed TOML",
         w_text("p.toml", 'kind = "pairs\n')),
    Case("generate/output is a foreign JSONL", GEN[:-1] + ["captions.jsonl", "--captions", "captions.jsonl"],
         "not a comparatives record", lambda d, a: (d / "captions.jsonl").write_text(
             "".join(_captions_line(a["world"], k) + "\n" for k in range(3)))),
    # filter
    Case("filter/missing comparatives", ["filter", "nope.jsonl", "--out", "kept.jsonl"], "not found"),
    Case("filter/records without text", ["filter", "comps.jsonl", "--out", "kept.jsonl"], 'has no "text"',
         w_comparatives_without_text),
    Case("filter/rules TOML with an unknown key", ["filter", "comps.jsonl", "--out", "kept.jsonl", "--rules", "r.toml"],
         "unknown key(s) colour", w_many(w_comparatives_without_text, w_text(
             "r.toml", '[[rules]]\nname = "x"\naction = "drop"\ncontains = ["a"]\ncolour = 1\n'))),
    Case("filter/bad regex in rules", ["filter", "comps.jsonl", "--out", "kept.jsonl", "--rules", "r.toml"],
         "bad regex", w_many(w_comparatives_without_text, w_text(
             "r.toml", '[[rules]]\nname = "x"\naction = "drop"\nregex = "("\n'))),
    # train
    Case("train/config TOML with an unknown key", ["train", "--config", "run.toml", "--out", "run"],
         "learning_rate", w_text("run.toml", 'model = "pcclip-micro"\nlearning_rate = 0.1\n')),
    Case("train/malformed config TOML", ["train", "--config", "run.toml", "--out", "run"], "malformed TOML",
         w_text("run.toml", "epochs = = 3\n")),
    Case("train/zero-byte comparatives", ["train", *MODEL, "--comparatives", "comps.jsonl", "--captions", CAPTIONS,
                                          "--out", "run"], "comps.jsonl", w_empty("comps.jsonl")),
    Case("train/NaN learning rate", ["train", *MODEL, "--comparatives", "comps.jsonl", "--captions", CAPTIONS,
                                     "--out", "run", "--lr", "nan"], "--lr must be a finite number"),
    Case("train/infinite temperature", ["train", *MODEL, "--comparatives", "comps.jsonl", "--captions", CAPTIONS,
                                        "--out", "run", "--temperature", "inf"], "--temperature must be a finite"),
    Case("train/NaN in the config file", ["train", "--config", "run.toml", "--out", "run"],
         "weight_decay must be a finite number", w_text("run.toml", 'model = "pcclip-micro"\nweight_decay = nan\n'
                                                        'comparatives = "c.jsonl"\ncaptions = "c.jsonl"\n')),
    Case("train/average with a NaN alpha", ["train", "average", "{ckpt}", "--out", "avg", "--alpha", "nan"],
         "--alpha must be a finite number"),
    Case("train/resume a missing run", ["train", "--resume", "nowhere"], "no such run directory"),
    # rank
    Case("rank/missing image", ["rank", *MODEL, "a.png", "b.png", "larger"], "not found", w_images(("a.png", "ok"))),
    Case("rank/zero-byte image", ["rank", *MODEL, "a.png", "b.png", "larger"], "unreadable image",
         w_images(("a.png", "ok"), ("b.png", b""))),
    Case("rank/text file posing as an image", ["rank", *MODEL, "a.png", "b.png", "larger"], "unreadable image",
         w_images(("a.png", "ok"), ("b.png", b"this is not a PNG\n"))),
    Case("rank/decompression bomb", ["rank", *MODEL, "a.png", "b.png", "larger"], "too large to decode safely",
         w_images(("a.png", "ok"), ("b.png", bomb_png()))),
    Case("rank/unknown model", ["rank", "--model", "ViT-Z-99", "a.png", "b.png", "larger"], "ViT-Z-99",
         w_images(("a.png", "ok"), ("b.png", "ok"))),
    Case("rank/pickle posing as a checkpoint", ["rank", "--model", "ckpt", "a.png", "b.png", "larger"],
         "never unpickles", w_many(w_pickle_checkpoint, w_images(("a.png", "ok"), ("b.png", "ok")))),
    Case("rank/wrong-architecture checkpoint", ["rank", "--model", "ckpt", "a.png", "b.png", "larger"],
         "does not match architecture pcclip-tiny", w_many(w_wrong_arch, w_images(("a.png", "ok"), ("b.png", "ok")))),
    Case("rank/checkpoint arch that escapes its directory", ["rank", "--model", "ckpt", "a.png", "b.png", "larger"],
         "not an architecture name", w_many(w_wrong_arch, w_text("ckpt/pcclip.json", json.dumps(
             {"format": "pcclip-checkpoint", "arch": "../../../escaped"})), w_images(("a.png", "ok"), ("b.png", "ok")))),
    Case("rank/task TOML with an unknown key", ["rank", *MODEL, "--task", "task.toml"], "colour",
         w_text("task.toml", 'kind = "groups"\ncolour = "red"\n')),
    Case("rank/task template with an unknown placeholder", ["rank", *MODEL, "--task", "task.toml"],
         "unknown placeholder {colour}", w_task('template = "{first} then {second}, both {colour}"\n')),
    Case("rank/paraphrase with an unknown placeholder", ["rank", *MODEL, "--task", "task.toml"],
         "unknown placeholder {third}", w_task('template = "{first} / {second}"\n'
                                               'paraphrases = ["{first}, {second} and {third}"]\n')),
    Case("index/image outside the manifest's folder, by ../", ["--inside-only", "index", "sub/m.jsonl", "--out",
                                                               "idx", *MODEL], "'far'",
         w_images(("a.png", "ok"), ("sub/m.jsonl", b'{"id": "far", "image": "../a.png"}\n'))),
    # classify, distance, eval
    Case("classify/alpha out of range", ["classify", *MODEL, "--dataset", "{world}/classes/colour.jsonl", "--alpha",
                                         "1.5"], "--alpha must be in [0, 1]"),
    Case("classify/infinite alpha", ["classify", *MODEL, "--dataset", "{world}/classes/colour.jsonl", "--alpha",
                                     "-inf"], "--alpha must be a finite number"),
    Case("classify/missing manifest", ["classify", *MODEL, "--dataset", "nope.jsonl"], "nope.jsonl"),
    Case("distance/malformed comparatives", ["distance", *MODEL, "--comparatives", "comps.jsonl"],
         "comps.jsonl:1", w_text("comps.jsonl", '{"kind": "classes", "first": "cat"\n')),
    Case("eval/alpha out of range", ["eval", *MODEL, "--world", "{world}", "--alpha", "-1", "--out", "res.json"],
         "--alpha must be in [0, 1]"),
    # index, retrieve
    Case("index/folder without images", ["index", "imgs", "--out", "idx", *MODEL], "no images",
         lambda d, a: (d / "imgs").mkdir() or (d / "imgs" / "notes.txt").write_text("x")),
    Case("index/decompression bomb", ["index", "imgs", "--out", "idx", *MODEL], "too large to decode safely",
         w_images(("imgs/a.png", "ok"), ("imgs/b.png", bomb_png()))),
    Case("index/corrupt image", ["index", "imgs", "--out", "idx", *MODEL], "unreadable image",
         w_images(("imgs/a.png", "ok"), ("imgs/b.png", b"\x89PNG\r\n\x1a\n truncated"))),
    Case("retrieve/k out of range", ["retrieve", "--index", "{index}", "--text", "a red circle", "--k", "0"],
         "--k must be at least 1"),
    Case("retrieve/index and model mismatch", ["retrieve", "--index", "{index}", "--text", "a red circle", "--model",
                                               "pcclip-tiny"], "pcclip-tiny"),
    Case("retrieve/missing index", ["retrieve", "--index", "nope", "--text", "a red circle"], "index not found"),
    Case("index/target recall above 1", ["index", "{world}/captions.jsonl", "--out", "idx", *MODEL,
                                         "--target-recall", "1.5"], "--target-recall must be in (0, 1]"),
    Case("index/target recall of 0", ["index", "{world}/captions.jsonl", "--out", "idx", *MODEL,
                                      "--target-recall", "0"], "--target-recall must be in (0, 1]"),
    Case("retrieve/query templates without a placeholder", ["retrieve", "--index", "{index}", "--attribute", "blue",
                                                            "--query-templates", "q.toml"], "no {word} or {cmp}",
         w_text("q.toml", 'templates = ["a photo of something.", "a {word} thing"]\n')),
    Case("retrieve/query templates that do not parse", ["retrieve", "--index", "{index}", "--attribute", "blue",
                                                        "--query-templates", "q.toml"], "malformed TOML",
         w_text("q.toml", 'templates = ["a {word} thing"\n')),
    Case("rank/query templates with an unknown placeholder", ["rank", *MODEL, "a.png", "b.png", "larger",
                                                              "--query-templates", "q.txt"], "unknown placeholder {colour}",
         w_many(w_text("q.txt", "a {colour} thing\n"), w_images(("a.png", "ok"), ("b.png", "ok")))),
    # report, data
    Case("report/no results", ["report", "runs", "--out", "table.md"], "runs",
         lambda d, a: (d / "runs").mkdir()),
    Case("data/image count out of range", ["data", "shapes", "world", "--images", "0"], "images"),
]


def _fill(arg: str, assets: dict) -> str:
    return arg.format(world=assets["world"], ckpt=assets["ckpt"], index=assets["index"])


def snapshot(root: Path) -> dict:
    """Every file and folder under root, with a content hash for files."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_clean_error(case, assets, cli, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    if case.write:
        case.write(work, assets)
    args = [_fill(str(a), assets) for a in case.args]
    before = snapshot(work)
    if case.proc:
        env = {k: v for k, v in os.environ.items() if case.env.get(k, "") is not None}
        env.update({k: v for k, v in case.env.items() if v is not None})
        proc = subprocess.run([sys.executable, "-m", "pcclip_cli.cli.main", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    else:
        monkeypatch.chdir(work)
        for k, v in case.env.items():
            if v is None:
                monkeypatch.delenv(k, raising=False)
            else:
                monkeypatch.setenv(k, v)
        result = cli(*args)
    assert_clean_error(result, case.fragment)
    assert snapshot(work) == before, "the failed run left new or changed files behind"


def test_the_matrix_covers_every_command():
    commands = {c.args[0] for c in CASES}
    assert len(CASES) >= 25
    assert {"generate", "filter", "train", "rank", "classify", "distance", "eval", "index", "retrieve", "report",
            "data"} <= commands


def test_a_decompression_bomb_is_skipped_like_any_bad_image(cli, assets, tmp_path, monkeypatch):
    """--on-bad-image skip treats a bomb as an ordinary bad image: a warning, and the other images ranked."""
    work = tmp_path / "work"
    work.mkdir()
    w_images(("a.png", "ok"), ("c.png", "ok"), ("b.png", bomb_png()))(work, assets)
    monkeypatch.chdir(work)
    res = cli("rank", *MODEL, "a.png", "b.png", "c.png", "larger", "--on-bad-image", "skip", "--json")
    assert res.code == 0, res.stderr
    ranked = [row["image"] for row in res.json()["order"]]
    assert len(ranked) == 2 and not any(r.endswith("b.png") for r in ranked)
    assert "b.png" in res.stderr and "too large" in res.stderr


def test_inputs_with_a_byte_order_mark_read_as_utf8(tmp_path):
    """JSONL and TOML files that start with a UTF-8 BOM (as some editors write them) read like plain UTF-8."""
    from pcclip_cli.core.config import load_toml
    from pcclip_cli.data.records import read_captions

    captions = tmp_path / "captions.jsonl"
    captions.write_bytes(b"\xef\xbb\xbf" + json.dumps({"image": "a.png", "caption": "a red circle"}).encode() + b"\n"
                         + json.dumps({"image": "b.png", "caption": "a blue square"}).encode() + b"\n")
    records = read_captions(captions)
    assert [r.caption for r in records] == ["a red circle", "a blue square"]
    toml = tmp_path / "run.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + b'model = "pcclip-micro"\nepochs = 3\n')
    assert load_toml(toml) == {"model": "pcclip-micro", "epochs": 3}
