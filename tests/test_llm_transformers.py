"""The transformers backend: a tiny Llama made here (fast), and the SmolLM2 GGUF read by transformers (slow)."""

from __future__ import annotations

import pytest
from test_llm import shapes_requests

from pcclip_cli.core.errors import DataError
from pcclip_cli.llm import Params, get_llm

CORPUS = ["Q: What is the visual difference between an image captioned with a small red circle and a big star?",
          "A: The first shape is a small red circle, while the second shape is a larger blue square.",
          "Both shapes are green, but the first is a large triangle and the second is a small star."]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 2-layer LlamaForCausalLM with a byte-level BPE tokenizer trained on a few sentences, saved to disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llama")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>"],
                                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    tok.save_pretrained(out)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def test_batched_left_padding_equals_one_by_one(tiny_llama):
    llm = get_llm(f"transformers:{tiny_llama}", device="cpu")
    assert llm.backend == "transformers" and llm.tokenizer.padding_side == "left"
    reqs = shapes_requests(3)  # prompts of different lengths, so the batch is padded
    lengths = {len(llm.tokenizer(r.prompt)["input_ids"]) for r in reqs}
    assert len(lengths) > 1
    params = Params(max_tokens=6)
    batched = [c.text for _, c in llm.stream(reqs, params, batch_size=3)]
    single = [c.text for _, c in llm.stream(reqs, params, batch_size=1)]
    assert batched == single
    assert all(t for t in batched)
    assert llm.stats.calls == 6 and 0 < llm.stats.tokens <= 36


def test_local_directory_resolves_to_transformers(tiny_llama):
    llm = get_llm(str(tiny_llama), device="cpu")
    assert llm.backend == "transformers"
    comp = llm.complete(shapes_requests(1), Params(max_tokens=4, temperature=0.8, seed=3))[0]
    again = llm.complete(shapes_requests(1), Params(max_tokens=4, temperature=0.8, seed=3))[0]
    assert comp.text == again.text  # sampling is seeded from the item key


def test_missing_model_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no config.json"):
        get_llm(f"transformers:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="neither a local directory nor a hub id"):
        get_llm(f"transformers:{tmp_path / 'missing'}")


@pytest.mark.slow
def test_transformers_reads_the_smollm2_gguf():
    """About 30 s to dequantise. Its greedy text starts like llama.cpp's but can drift: llama.cpp multiplies
    quantised weights, transformers the fp32 dequantised ones."""
    reqs = shapes_requests(3)
    hf = get_llm("smollm2-135m-hf", device="cpu")
    assert hf.backend == "transformers"
    params = Params(max_tokens=20)
    got = [c.text for _, c in hf.stream(reqs, params, batch_size=1)]
    ref = [c.text for _, c in get_llm("smollm2-135m").stream(reqs, params)]
    assert all(t.strip() for t in got)
    # Same tokens in (checked: the GGUF tokenizer matches llama.cpp's), close but not always the same text out.
    assert any(a == b for a, b in zip(got, ref, strict=True))


def test_the_shared_prompt_prefix_is_read_once_and_changes_no_token(tiny_llama, one_torch_thread):
    reqs = shapes_requests(3)
    params = Params(max_tokens=6)
    plain = get_llm(f"transformers:{tiny_llama}", device="cpu", prefix_cache=False)
    expected = [c.text for _, c in plain.stream(reqs, params, batch_size=1)]
    llm = get_llm(f"transformers:{tiny_llama}", device="cpu")
    seen = []
    hook = llm.model.register_forward_pre_hook(lambda _, args, kw: seen.append(kw["input_ids"].shape),
                                               with_kwargs=True)
    try:
        first = [c.text for _, c in llm.stream(reqs, params, batch_size=3)]
        again = [c.text for _, c in llm.stream(reqs[:2], params, batch_size=2)]
    finally:
        hook.remove()
    assert first == expected and again == expected[:2]
    shared = len(llm._prefix[0])
    assert shared > 100  # the few-shot demonstrations
    # One forward pass reads the prefix (batch of one); generation never feeds a row of prefix length again,
    # and the second batch, sharing the same prefix, does not read it a second time.
    assert [s for s in seen if s[0] == 1 and s[1] >= shared] == [(1, shared)]
    assert all(s[1] < shared for s in seen if s[0] > 1)


def test_batches_decode_into_a_preallocated_cache_with_the_same_tokens(tiny_llama, one_torch_thread):
    """Rows of a batch share a StaticCache filled with the prefix's KV (no per-token concatenation); the texts
    equal those of the dynamic cache, item by item."""
    from transformers import StaticCache

    reqs = shapes_requests(3)
    params = Params(max_tokens=8)
    llm = get_llm(f"transformers:{tiny_llama}", device="cpu")
    caches = []
    hook = llm.model.register_forward_pre_hook(
        lambda _, args, kw: caches.append(type(kw.get("past_key_values")).__name__), with_kwargs=True)
    try:
        static = [c.text for _, c in llm.stream(reqs, params, batch_size=3)]
    finally:
        hook.remove()
    assert StaticCache.__name__ in caches
    llm._static_copy = lambda *a: None  # the dynamic path, for reference
    dynamic = [c.text for _, c in llm.stream(reqs, params, batch_size=3)]
    assert static == dynamic and all(static)


def test_chat_template_wraps_the_question_and_opens_the_answer_with_its_cue(tiny_llama):
    from pcclip_cli.llm.base import split_answer_cue

    assert split_answer_cue("Q: two shapes?\nA:") == ("Q: two shapes?", "A:")
    assert split_answer_cue("no cue here") == ("no cue here", "")
    assert split_answer_cue("line\na long last line that ends:")[1] == ""
    llm = get_llm(f"transformers:{tiny_llama}", device="cpu", chat=True)
    llm.tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    prompt = llm._prompt(shapes_requests(1)[0].prompt)
    assert prompt.startswith("<user>") and prompt.endswith("<assistant>A:") and "\nA:<assistant>" not in prompt


def test_one_at_a_time_reuses_the_prefix_cached_before(tiny_llama, one_torch_thread):
    """Batches of one find the prefix they share with the previous prompt: after the first two items, the
    demonstrations are not read again, and the texts equal the uncached path's."""
    reqs = shapes_requests(3)
    params = Params(max_tokens=6)
    plain = get_llm(f"transformers:{tiny_llama}", device="cpu", prefix_cache=False)
    expected = [c.text for _, c in plain.stream(reqs, params, batch_size=1)]
    llm = get_llm(f"transformers:{tiny_llama}", device="cpu")
    seen = []
    hook = llm.model.register_forward_pre_hook(lambda _, args, kw: seen.append(kw["input_ids"].shape[1]),
                                               with_kwargs=True)
    try:
        got = [c.text for _, c in llm.stream(reqs, params, batch_size=1)]
    finally:
        hook.remove()
    assert got == expected
    shared = len(llm._prefix[0])
    assert shared > 100
    # Long reads: the first prompt's tokens but its last, then the prefix the first two share; never a third.
    assert len([n for n in seen if n >= shared]) == 2
