"""`pcclip align` (EX2's RL alignment): the reward is the paper's mean cosine, and a tiny real LLM runs a few GRPO
steps through the CLI, resumes from a checkpoint without duplicating a step, and refuses bad input in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import assert_clean_error

pytest.importorskip("trl")

WORDS = ("a flat shape drawn on plain dark background with straight sides round edges bright colour that is "
         "red green blue yellow purple orange circle square triangle small large of the and Q: A: What longer "
         "description visual features class").split()


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    """A real (randomly initialised, seeded) one-layer Llama with a word-level tokenizer: a tiny causal LM."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]", *dict.fromkeys(WORDS)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=0, eos_token_id=2, bos_token_id=None)
    out = tmp_path_factory.mktemp("llm") / "tiny-llama"
    LlamaForCausalLM(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompt") / "describe.toml"
    path.write_text('kind = "descriptions"\nstop = ["\\nQ:"]\n'
                    'template = "Q: What longer description of the visual features of the class {class_name} ? A:"\n')
    return path


def test_reward_is_the_mean_cosine_with_the_concepts_images(world, micro_clip):
    """Known answer: the centroid shortcut equals averaging the cosine over each training image one by one."""
    from PIL import Image

    from pcclip_cli.alignment.reward import concept_images, description_rewards
    from pcclip_cli.data.datasets.base import load_dataset

    ds = load_dataset(world / "classes" / "colour.jsonl")
    images = concept_images(micro_clip, ds, "train")
    texts = ["a bright red shape", "a small blue circle", "green", ""]
    concepts = [images.concepts[0], images.concepts[1], images.concepts[0], images.concepts[1]]
    got = description_rewards(micro_clip, texts, concepts, images)
    for text, concept, value in zip(texts[:3], concepts[:3], got[:3], strict=True):
        paths = [it.path for it in ds.in_split("train") if it.label == concept]
        imgs = micro_clip.encode_image_batch([Image.open(p).convert("RGB") for p in paths])
        t = micro_clip.encode_texts([text])[0]
        direct = float(np.mean([float(np.dot(t, v) / np.linalg.norm(v)) for v in imgs]))
        assert value == pytest.approx(direct, abs=1e-5)
    assert got[3] == 0.0
    assert images.counts[0] == sum(1 for it in ds.in_split("train") if it.label == images.concepts[0])


def _align_args(world, out, tiny_llm, prompt_file, *extra):
    return ("align", "--dataset", world / "classes" / "colour.jsonl", "--out", out, "--llm", tiny_llm,
            "--model", "pcclip-micro", "--prompt", prompt_file, "--steps", "3", "--concepts-per-step", "2",
            "--generations", "2", "--max-new-tokens", "4", "--eval-descriptions", "1", "--save-every", "1",
            *extra, "--json")


def test_align_runs_resumes_and_is_a_no_op_when_done(cli, world, tiny_llm, prompt_file, tmp_path, one_torch_thread):
    out = tmp_path / "run"
    res = cli(*_align_args(world, out, tiny_llm, prompt_file))
    assert res.code == 0, res.stderr
    summary = res.json()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r["reward"]) for r in rows)
    assert summary["reward_last"] == pytest.approx(rows[-1]["reward"])
    # Each row names its step's concepts and their mean rewards; equal groups: the step's reward is their mean.
    for r in rows:
        assert set(r["concepts"]) <= set(summary["concepts"]) and r["concepts"]
        assert r["reward"] == pytest.approx(np.mean(list(r["concepts"].values())), abs=1e-4)
    from pcclip_cli.alignment.run import same_concept_gain

    assert (summary["reward_gain_same_concepts"], summary["concepts_seen_twice"]) == same_concept_gain(rows)
    assert same_concept_gain([{"concepts": {"a": 0.1, "b": 0.5}}, {"concepts": {"a": 0.3}},
                              {"concepts": {"a": 0.2, "b": 0.4}}]) == (0.0, 2)
    assert summary["held_out"]["split"] == "test"
    assert (out / "model" / "config.json").exists()
    assert (out / "reward.png").read_bytes()[:4] == b"\x89PNG"  # the reward curve beside metrics.jsonl

    again = cli(*_align_args(world, out, tiny_llm, prompt_file))
    assert again.code == 0 and again.json()["already_done"] is True

    # A kill after the checkpoint of step 2: the rerun redoes step 3 only and logs it once.
    killed = tmp_path / "killed"
    shutil.copytree(out, killed)
    shutil.rmtree(killed / "model")
    (killed / "align.json").unlink()
    shutil.rmtree(killed / "checkpoints" / "checkpoint-3")
    with (killed / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 3, "rew')  # a torn line, as a kill mid-write leaves
    res2 = cli(*_align_args(world, killed, tiny_llm, prompt_file))
    assert res2.code == 0, res2.stderr
    assert res2.json()["resumed_from"] == 2
    rows2 = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows2] == [1, 2, 3]
    # Seeded CPU run: the resumed step reproduces the uninterrupted one (RNG state restored from the checkpoint).
    assert rows2[-1]["reward"] == pytest.approx(rows[-1]["reward"], abs=1e-4)


def test_align_refuses_changed_settings_and_bad_input(cli, world, tiny_llm, prompt_file, tmp_path):
    out = tmp_path / "run"
    (out).mkdir()
    (out / "config.json").write_text(json.dumps({"steps": 99}))
    assert_clean_error(cli(*_align_args(world, out, tiny_llm, prompt_file)), "other settings")

    bad_prompt = tmp_path / "bad.toml"
    bad_prompt.write_text('kind = "descriptions"\ntemplate = "Describe it. A:"\n')
    assert_clean_error(cli(*_align_args(world, tmp_path / "r2", tiny_llm, bad_prompt)), "{class_name}")
    assert not (tmp_path / "r2").exists()

    assert_clean_error(cli(*_align_args(world, tmp_path / "r3", "no-such-llm", prompt_file)), "no-such-llm")
    assert_clean_error(cli(*_align_args(world, tmp_path / "r4", "template", prompt_file)), "template")
    assert_clean_error(cli(*_align_args(world, tmp_path / "r5", tiny_llm, prompt_file, "--generations", "1")),
                       "--generations")

    # A reward model that embeds text only (the LLM's own directory given as --model): one line, nothing written.
    text_only = [a if a != "pcclip-micro" else tiny_llm for a in _align_args(world, tmp_path / "r6", tiny_llm,
                                                                             prompt_file)]
    assert_clean_error(cli(*text_only), "cannot embed images")
    assert not (tmp_path / "r6").exists()
