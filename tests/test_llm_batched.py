"""Batched decoding in the llama.cpp backend: the same tokens as one item at a time, with the real SmolLM2 GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcclip_cli.llm import Params, get_llm


@pytest.fixture(scope="module")
def world_requests(world):
    from pcclip_cli.generation.plan import GenerateConfig, pairs_plan
    from pcclip_cli.generation.prompts import load_prompt

    cfg = GenerateConfig(llm="template", out=None, captions=Path(world) / "captions.jsonl", pairs=5, seed=5)
    return list(pairs_plan(cfg, load_prompt("shapes")).items())


def _run(reqs, params, batch_size):
    llm = get_llm("smollm2-135m", n_threads=1)
    try:
        return [(r.key, c.text, c.tokens, c.finish) for r, c in llm.stream(reqs, params, batch_size=batch_size)]
    finally:
        llm.close()


def test_batched_greedy_equals_one_at_a_time_token_for_token(world_requests):
    params = Params(max_tokens=24)
    single = _run(world_requests, params, 1)
    # 5 items in batches of 2 (2, 2, 1) and of 5: the shared prefix is kept between batches and re-used.
    assert _run(world_requests, params, 2) == single
    assert _run(world_requests, params, 5) == single
    assert len({text for _, text, _, _ in single}) > 1  # the items really differ
    assert all(0 < tokens <= 24 for _, _, tokens, _ in single)


def test_batched_sampling_is_seeded_per_item(world_requests):
    reqs = world_requests[:4]
    params = Params(max_tokens=12, temperature=0.9, seed=11)
    first = _run(reqs, params, 4)
    assert _run(reqs, params, 4) == first
    assert _run(reqs, Params(max_tokens=12, temperature=0.9, seed=12), 4) != first


def test_a_prompt_longer_than_the_context_is_a_clean_error(world_requests):
    from pcclip_cli.core.errors import PcclipError

    llm = get_llm("smollm2-135m", n_ctx=256)
    with pytest.raises(PcclipError, match="exceeds the context of 256 tokens"):
        llm.complete(world_requests[:2], Params(max_tokens=40))


def test_chat_template_from_the_gguf(world_requests):
    """--chat wraps each prompt in the GGUF's own template, batched and one at a time alike; a GGUF without a
    template (Gemma 3 base) is one error naming the fix."""
    from pcclip_cli.core.errors import DataError

    llm = get_llm("smollm2-135m", n_threads=1, chat=True)
    try:
        prompt = llm._prompt(world_requests[0].prompt)
        assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\nA:")
        params = Params(max_tokens=16)
        batched = [c.text for _, c in llm.stream(world_requests[:3], params, batch_size=3)]
        single = [c.text for _, c in llm.stream(world_requests[:3], params, batch_size=1)]
    finally:
        llm.close()
    assert batched == single and any(t.strip() for t in batched)
    with pytest.raises(DataError, match="no chat template.*drop --chat"):
        get_llm("gemma3-270m", chat=True)
