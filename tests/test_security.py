"""Security: nothing unpickles untrusted data, API keys never leak, and paths in metadata stay in their directory.

Covered elsewhere, not repeated here: a pickle posing as a checkpoint is refused without running
(tests/test_models.py, in-process; tests/test_bad_inputs.py through `pcclip rank --model DIR`, where the exploit
would leave a file in the working directory); a missing key is a clean error (tests/test_llm_openai.py).
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CliResult, assert_clean_error
from pcclip_cli.core.errors import CheckpointError, DataError

PACKAGE = Path(__file__).resolve().parents[1] / "pcclip_cli"
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}

# Known offenders, each a strict xfail: the test starts passing (and must be unmarked) once it is fixed.
KNOWN_UNSAFE: dict[str, str] = {}


def unsafe_loads(source: str) -> list[str]:
    """Calls that can unpickle: pickle-family load/loads/Unpickler, torch.load without weights_only=True,
    numpy.load with allow_pickle=True, pandas.read_pickle; and `from pickle import ...`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLERS:
            found.append(f"line {node.lineno}: from {node.module} import ...")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        name = node.func.attr
        consts = {k.arg: k.value.value if isinstance(k.value, ast.Constant) else "?" for k in node.keywords}
        if owner in PICKLERS and name in ("load", "loads", "Unpickler", "open"):
            found.append(f"line {node.lineno}: {owner}.{name}")
        elif owner == "torch" and name == "load" and consts.get("weights_only") is not True:
            found.append(f"line {node.lineno}: torch.load without weights_only=True")
        elif owner in ("np", "numpy") and name == "load" and consts.get("allow_pickle", False) is not False:
            found.append(f"line {node.lineno}: numpy.load with allow_pickle")
        elif name == "read_pickle":
            found.append(f"line {node.lineno}: read_pickle")
    return found


def test_the_scanner_finds_what_it_looks_for():
    bad = ("import pickle, torch, numpy as np\nfrom dill import loads\npickle.load(f)\ntorch.load(p)\n"
           "torch.load(p, weights_only=False)\nnp.load(p, allow_pickle=True)\n")
    assert len(unsafe_loads(bad)) == 5
    assert unsafe_loads("torch.load(p, map_location='cpu', weights_only=True)\nnp.load(p)\n") == []


@pytest.mark.parametrize("module", [
    pytest.param(p.relative_to(PACKAGE).as_posix(), marks=[pytest.mark.xfail(
        strict=True, reason=KNOWN_UNSAFE[p.relative_to(PACKAGE).as_posix()])]
        if p.relative_to(PACKAGE).as_posix() in KNOWN_UNSAFE else [])
    for p in sorted(PACKAGE.rglob("*.py"))])
def test_no_module_unpickles_untrusted_data(module):
    offenders = unsafe_loads((PACKAGE / module).read_text(encoding="utf-8"))
    assert not offenders, f"pcclip_cli/{module}: {offenders}"


# ---- API keys ---------------------------------------------------------------------------------------------------


def _files_containing(roots: list[Path], needle: bytes) -> list[str]:
    hits = []
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and needle in p.read_bytes():
                hits.append(str(p))
    return hits


def test_a_planted_api_key_never_leaks(world, tmp_path, pcclip_home):
    """A generate run against a local OpenAI-compatible server, once refused (with a message that quotes the key
    back, as some proxies do) and once successful with the SDK's debug logging on: the key reaches the server,
    and appears in no output, log, error message or file."""
    from test_faults import LocalLLMServer

    key = "sk-pcclip-PLANTED-" + secrets.token_hex(12)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": key, "OPENAI_LOG": "debug", "HTTPX_LOG_LEVEL": "trace"}

    def generate(url):
        args = ["generate", "--llm", "openai:smollm2", "--base-url", url, "--captions", world / "captions.jsonl",
                "--out", out, "--pairs", 2, "--prompt", "shapes", "--max-tokens", 4, "--retries", 0, "--timeout", 120,
                "--json"]
        proc = subprocess.run([sys.executable, "-m", "pcclip_cli.cli.main", *map(str, args)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    with LocalLLMServer(["401-echo"]) as server:
        refused = generate(server.url)
        done = generate(server.url)
        auth = [e["authorization"] for e in server.log]
    assert auth and all(a == f"Bearer {key}" for a in auth), "the key should reach the server, and only it"
    assert_clean_error(refused, "refused the request", "HTTP 401")
    assert "***" in refused.stderr  # the echoed key was scrubbed, not just absent
    assert done.code == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)  # a request in flight beside the refused one may have finished
    assert summary["skipped"] + summary["generated"] == 2 and len(out.read_text().splitlines()) == 2
    for res in (refused, done):
        assert key not in res.stdout and key not in res.stderr
        assert key[-12:] not in res.stderr  # not even a tail of it
    assert _files_containing([tmp_path, pcclip_home], key.encode()) == []


# ---- paths in metadata --------------------------------------------------------------------------------------------


def test_inside_refuses_paths_that_escape(tmp_path):
    from pcclip_cli.core.io import inside

    (tmp_path / "a" / "b").mkdir(parents=True)
    assert inside(tmp_path, "a/b/c.json") == (tmp_path / "a" / "b" / "c.json").resolve()
    assert inside(tmp_path, "a/../a/b") == (tmp_path / "a" / "b").resolve()
    (tmp_path / "a" / "out").symlink_to("/etc")
    for bad in ("../x.json", "a/../../x", "/etc/passwd", "a/out/passwd"):
        with pytest.raises(DataError, match="escapes its directory"):
            inside(tmp_path, bad)


def _checkpoint(tmp_path: Path, **meta_changes) -> Path:
    from pcclip_cli.clip.checkpoints import save_checkpoint
    from pcclip_cli.models import load_clip

    clip = load_clip("pcclip-micro", "cpu")
    ckpt = tmp_path / "ckpt"
    save_checkpoint(clip.model, ckpt, arch=clip.arch, meta={})
    meta = json.loads((ckpt / "pcclip.json").read_text())
    meta.update(meta_changes)
    (ckpt / "pcclip.json").write_text(json.dumps(meta))
    return ckpt


def test_a_checkpoint_arch_cannot_name_a_file_outside(tmp_path):
    """A checkpoint of an unknown architecture registers the config it carries under its arch name; an arch such
    as "../../x" once wrote x.json wherever it pointed."""
    from pcclip_cli.models import load_clip

    target = tmp_path / "escaped"
    ckpt = _checkpoint(tmp_path, arch=f"../../../../../../../..{target}")
    with pytest.raises(CheckpointError, match="not an architecture name"):
        load_clip(str(ckpt), "cpu", fresh=True)
    assert not target.with_suffix(".json").exists()


def test_an_image_fingerprint_cannot_move_the_embedding_cache(tmp_path, world, pcclip_home):
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.models import load_clip

    target = tmp_path / "evil"
    ckpt = _checkpoint(tmp_path, image_fingerprint=f"../../../../../../../..{target}")
    clip = load_clip(str(ckpt), "cpu", fresh=True)
    image = world / json.loads((world / "captions.jsonl").read_text().splitlines()[0])["image"]
    assert embed_images(clip, [image]).vectors.shape[0] == 1
    assert not list(tmp_path.glob("evil*"))
    caches = [p for p in (pcclip_home / "embeddings").iterdir() if "evil" in p.name]
    assert caches and all(p.parent == pcclip_home / "embeddings" for p in caches)


def test_a_run_directory_cannot_redirect_a_resumed_run(world, tmp_path, cli):
    """`train --resume DIR` writes only into DIR, whatever the `out` recorded in DIR's config says."""
    import importlib.util

    if importlib.util.find_spec("pcclip_cli.training") is None:
        pytest.skip("`pcclip train` is not built yet (pcclip_cli/training.py is absent)")
    from pcclip_cli.finetune import train
    from pcclip_cli.training import TrainConfig
    from pcclip_cli.training.pair_data import oracle_comparatives

    pairs = tmp_path / "pairs.jsonl"
    oracle_comparatives(world, pairs, pairs=32, split=None, seed=0)
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    train(TrainConfig(model="pcclip-micro", comparatives=str(pairs), captions=str(world / "captions.jsonl"),
                      out=str(run), epochs=1, batch_size=32, lr=1e-4))
    from pcclip_cli.training import CONFIG_JSON

    ident_path = run / CONFIG_JSON
    ident = json.loads(ident_path.read_text())
    ident["config"]["out"] = str(elsewhere)
    ident_path.write_text(json.dumps(ident))
    res = cli("train", "--resume", run, "--epochs", "2", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["checkpoint"] == str(run.resolve()) and not elsewhere.exists()



def test_third_party_pickles_are_read_as_plain_data_only(tmp_path):
    import os
    import pickle

    import numpy as np

    from pcclip_cli.core.io import load_plain_pickle

    good = tmp_path / "meta"
    good.write_bytes(pickle.dumps({"coarse_label_names": ["fish", "trees"], "data": np.arange(6).reshape(2, 3)}))
    loaded = load_plain_pickle(good)
    assert loaded["coarse_label_names"] == ["fish", "trees"] and loaded["data"].sum() == 15

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "train"
    bad.write_bytes(pickle.dumps({"coarse_labels": Exploit()}))
    with pytest.raises(DataError, match="not a plain-data pickle"):
        load_plain_pickle(bad)
    assert not marker.exists()
