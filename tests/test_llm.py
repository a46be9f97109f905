"""The LLM registry, the template oracle and the llama.cpp backend with the real SmolLM2 GGUF."""

from __future__ import annotations

import random
import sys

import pytest

from pcclip_cli.core.errors import DataError, PcclipError, UnknownModelError
from pcclip_cli.data import shapes
from pcclip_cli.generation.prompts import load_prompt
from pcclip_cli.llm import Params, Request, get_llm, list_llms
from pcclip_cli.llm.registry import resolve, smollm2_path

CAPTIONS = [("a small red circle", "a big blue star"), ("a tiny green square", "a huge green square"),
            ("a photo of a large purple star", "there is a small star coloured purple")]


def shapes_requests(n: int = 3) -> list[Request]:
    prompt = load_prompt("shapes")
    return [Request(f"k{i}", prompt.render(first_caption=a, second_caption=b), "pairs", f"a{i}", f"b{i}", a, b)
            for i, (a, b) in enumerate(CAPTIONS[:n])]


def test_list_llms_names_every_backend_and_the_paper_models():
    rows = list_llms()
    names = {r["name"]: r["backend"] for r in rows}
    assert names["smollm2-135m"] == "llamacpp" and names["gemma3-270m"] == "llamacpp"
    assert names["llama2-13b"] == "transformers" and names["gpt-4"] == "openai" and names["template"] == "template"
    assert {"name", "backend", "target"} <= set(rows[0])


def test_names_resolve_in_every_form(tmp_path):
    assert resolve("smollm2-135m")[1:] == ("llamacpp", "@smollm2")
    assert resolve("llama2-13b")[2] == "meta-llama/Llama-2-13b-chat-hf"
    assert resolve("llamacpp:/m/x.gguf") == ("llamacpp:/m/x.gguf", "llamacpp", "/m/x.gguf")
    assert resolve("/m/y.gguf")[1] == "llamacpp"
    assert resolve("openai:gpt-4o-mini")[1:] == ("openai", "gpt-4o-mini")
    assert resolve("transformers:org/model")[1:] == ("transformers", "org/model")
    assert resolve("transformers:smollm2-135m")[1:] == ("transformers", "@smollm2")
    assert resolve(str(tmp_path))[1] == "transformers"


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownModelError) as info:
        get_llm("llama-9000")
    msg = str(info.value)
    assert "llama-9000" in msg and "smollm2-135m" in msg and "gpt-4o" in msg and "\n" not in msg
    with pytest.raises(UnknownModelError, match="names no target"):
        get_llm("openai:")


def test_bad_gguf_paths(tmp_path):
    with pytest.raises(DataError, match="not found"):
        get_llm(str(tmp_path / "missing.gguf"))
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a model")
    with pytest.raises(DataError, match="not a GGUF file"):
        get_llm(f"llamacpp:{fake}")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(smollm2_path().read_bytes()[:100_000])
    with pytest.raises(DataError, match="could not load .*complete GGUF"):
        get_llm(str(truncated))


def test_options_that_do_not_apply_are_errors():
    with pytest.raises(PcclipError, match="unknown key.*base_url"):
        get_llm("smollm2-135m", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(PcclipError, match="unknown key.*concurrency; valid keys: relations"):
        get_llm("template", concurrency=3)


def test_template_oracle_uses_shapes_attributes_and_is_deterministic():
    red = {"count": 1, "objects": [{"colour": "red", "size": "small", "shape": "circle"}]}
    blue = {"count": 1, "objects": [{"colour": "blue", "size": "large", "shape": "circle"}]}
    req = Request("img_1 -> img_2", "", "pairs", "img_1", "img_2", "a small red circle", "a big blue circle",
                  red, blue)
    llm = get_llm("template")
    text = llm.complete([req], Params())[0].text
    assert text == shapes.describe_difference(red, blue, random.Random("template\0img_1 -> img_2"))
    assert "red" in text and "blue" in text and any(w in text for w in ("smaller", "tinier", "bigger", "larger"))
    assert get_llm("template").complete([req], Params())[0].text == text


def test_template_parses_class_names():
    llm = get_llm("template")
    reqs = [Request("a", "", "classes", "red circle", "blue circle"),
            Request("b", "", "classes", "circle", "square"),
            Request("c", "", "classes", "heron", "egret"),
            Request("d", "", "descriptions", "small yellow star", None, n=1)]
    colour, shape, plain, desc = (c.text for c in llm.complete(reqs, Params()))
    assert "red" in colour and "blue" in colour and "bigger" not in colour and "smaller" not in colour
    assert "square" in shape and "circle" in shape and "grey" not in shape
    assert "heron" in plain and "egret" in plain
    assert "yellow" in desc and "star" in desc and "small" in desc


def test_smollm2_completes_the_few_shot_prompt():
    llm = get_llm("smollm2-135m")
    assert llm.backend == "llamacpp" and llm.path == smollm2_path()
    reqs = shapes_requests()
    results = list(llm.stream(reqs, Params(max_tokens=40)))
    assert [r.key for r, _ in results] == ["k0", "k1", "k2"]
    for _, comp in results:
        assert comp.text.strip() and "\nQ:" not in comp.text
        assert 0 < comp.tokens <= 40
    assert llm.stats.calls == 3 and llm.stats.tokens == sum(c.tokens for _, c in results)
    # Greedy decoding is deterministic, and the loaded model is shared within the process.
    again = [c.text for _, c in get_llm("smollm2-135m").stream(reqs, Params(max_tokens=40))]
    assert again == [c.text for _, c in results]


def test_max_tokens_cuts_the_completion():
    comp = get_llm("smollm2-135m").complete(shapes_requests(1), Params(max_tokens=3))[0]
    assert comp.tokens <= 3 and comp.finish in ("length", "stop")


def test_import_of_the_registry_stays_light():
    import subprocess

    code = ("import sys, pcclip_cli.llm, pcclip_cli.generation.run, pcclip_cli.filtering.rules; "
            "print(sorted(m for m in ('torch', 'llama_cpp', 'transformers', 'openai', 'numpy', "
            "'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
