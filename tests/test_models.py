"""The CLIP registry: SPEC grammar, loading once, checkpoints that round-trip safely, helpful errors."""

import json
import pickle

import numpy as np
import pytest
import torch

from pcclip_cli.clip.checkpoints import read_checkpoint_meta, save_checkpoint
from pcclip_cli.core.errors import CheckpointError, UnknownModelError
from pcclip_cli.models import PAPER_MODEL, SpecKind, load_clip, parse_spec


def test_spec_grammar(tmp_path):
    assert parse_spec("shapes-clip").kind == SpecKind.shapes
    assert parse_spec("pcclip-tiny").kind == SpecKind.architecture
    spec = parse_spec(PAPER_MODEL)
    assert (spec.kind, spec.arch, spec.tag) == (SpecKind.pretrained, "ViT-L-14", "datacomp_xl_s13b_b90k")
    assert parse_spec("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K").kind == SpecKind.hf_hub
    assert parse_spec(str(tmp_path)).kind == SpecKind.checkpoint
    assert parse_spec("ckpt:runs/x").path.name == "x"


def test_unknown_spec_lists_valid_ones():
    with pytest.raises(UnknownModelError, match="shapes-clip") as info:
        parse_spec("ResNet-9000")
    assert "pcclip-tiny" in str(info.value)
    with pytest.raises(UnknownModelError, match="datacomp_xl_s13b_b90k"):
        parse_spec("ViT-L-14:nonsense")


def test_model_is_loaded_once_per_process(micro_clip):
    again = load_clip("pcclip-micro", "cpu")
    assert again is micro_clip
    fresh = load_clip("pcclip-micro", "cpu", fresh=True)
    assert fresh is not micro_clip
    # Random init is seeded: the same SPEC means the same weights.
    assert fresh.image_fingerprint == micro_clip.image_fingerprint
    for a, b in zip(fresh.model.parameters(), micro_clip.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_text_embeddings_are_normalised(micro_clip):
    emb = micro_clip.encode_texts(["a red circle", "a small blue square", "a star"])
    assert emb.shape == (3, 64) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def _perturbed_checkpoint(tmp_path, micro_clip):
    fresh = load_clip("pcclip-micro", "cpu", fresh=True)
    with torch.no_grad():
        fresh.model.text_projection.add_(0.01)
    return save_checkpoint(fresh.model, tmp_path / "ckpt", arch="pcclip-micro",
                           meta={"base": "pcclip-micro", "scope": "text"},
                           image_fingerprint=micro_clip.image_fingerprint), fresh


def test_checkpoint_round_trip_and_plain_open_clip(tmp_path, micro_clip):
    path, trained = _perturbed_checkpoint(tmp_path, micro_clip)
    meta = read_checkpoint_meta(path)
    assert meta["scope"] == "text" and meta["arch"] == "pcclip-micro" and meta["weights_sha256"]
    loaded = load_clip(str(path), "cpu")
    assert loaded.kind == SpecKind.checkpoint and loaded.scope == "text"
    texts = ["a big green star", "a tiny purple diamond"]
    assert np.allclose(loaded.encode_texts(texts), trained.encode_texts(texts), atol=1e-6)
    # Text-scope checkpoints keep the base image tower, and so its embedding cache.
    assert loaded.image_fingerprint == micro_clip.image_fingerprint
    assert loaded.fingerprint != micro_clip.fingerprint

    import open_clip
    from safetensors.torch import load_file

    plain = open_clip.create_model("pcclip-micro", pretrained=None)
    plain.load_state_dict(load_file(str(path / "model.safetensors")))
    assert torch.equal(plain.text_projection, trained.model.text_projection)


def test_checkpoint_with_missing_or_mismatched_files(tmp_path, micro_clip):
    path, _ = _perturbed_checkpoint(tmp_path, micro_clip)
    (path / "model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match="torn or its files are mismatched"):
        load_clip(str(path), "cpu", fresh=True)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_clip(str(path), "cpu", fresh=True)
    (path / "pcclip.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_clip(str(path), "cpu", fresh=True)
    (path / "pcclip.json").unlink()
    with pytest.raises(CheckpointError, match="pcclip.json is missing"):
        load_clip(str(path), "cpu", fresh=True)


def test_wrong_architecture_checkpoint_is_refused(tmp_path, micro_clip):
    path, _ = _perturbed_checkpoint(tmp_path, micro_clip)
    meta = json.loads((path / "pcclip.json").read_text())
    meta["arch"] = "pcclip-tiny"
    meta.pop("weights_bytes")
    (path / "pcclip.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match architecture pcclip-tiny"):
        load_clip(str(path), "cpu", fresh=True)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/pcclip-pwned-by-pickle",))


def test_pickle_posing_as_checkpoint_is_refused_without_running(tmp_path, micro_clip):
    import os

    marker = "/tmp/pcclip-pwned-by-pickle"
    if os.path.exists(marker):
        os.remove(marker)
    path, _ = _perturbed_checkpoint(tmp_path, micro_clip)
    (path / "model.safetensors").unlink()
    meta = json.loads((path / "pcclip.json").read_text())
    meta.pop("weights_bytes")
    (path / "pcclip.json").write_text(json.dumps(meta))
    with open(path / "model.pt", "wb") as fh:
        pickle.dump({"weights": _Exploit()}, fh)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_clip(str(path), "cpu", fresh=True)
    assert not os.path.exists(marker)
    bare = tmp_path / "weights.pt"
    bare.write_bytes(b"whatever")
    with pytest.raises(CheckpointError, match="pickle-style"):
        load_clip(str(bare), "cpu", fresh=True)


def test_models_command_lists_builtins(cli, tmp_path, micro_clip):
    _perturbed_checkpoint(tmp_path, micro_clip)
    result = cli("models", "--json", "--search", tmp_path)
    assert result.code == 0, result.stderr
    listing = result.json()
    assert {"pcclip-tiny", "pcclip-micro", "pcclip-minilm"} <= {b["name"] for b in listing["builtin"]}
    minilm = next(b for b in listing["builtin"] if b["name"] == "pcclip-minilm")
    assert minilm["text_tower"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert [s["name"] for s in listing["shapes"]] == ["shapes-clip", "shapes-clip-scratch", "produce-clip"]
    assert "locked sentence encoder" in listing["shapes"][0]["recipe"]
    assert listing["default"] == "shapes-clip" and listing["pretrained"][0] == PAPER_MODEL
    assert str(tmp_path / "ckpt") in [c["path"] for c in listing["checkpoints"]]
    table = cli("models")
    # Names are data on stdout, one tab-separated line each; the table (for people) is on stderr.
    assert table.code == 0 and "pcclip-tiny\tbuiltin\t" in table.stdout and "pcclip-tiny" in table.stderr
    assert "shapes-clip-scratch\tshapes\t" in table.stdout and "all-MiniLM-L6-v2" in table.stdout


def test_offline_hub_model_gives_clean_error(run_pcclip, tmp_path):
    # Loading the paper's model without a hub must fail with one line that says why, not hang or trace back.
    code = ("from pcclip_cli.models import load_clip\n"
            "from pcclip_cli.core.errors import PcclipError\n"
            "try:\n    load_clip('RN50:openai', 'cpu')\nexcept PcclipError as e:\n    print('ERR', e)\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}).stdout
    assert out.startswith("ERR could not fetch weights for RN50:openai")
    assert "HF_HUB_OFFLINE=1" in out
