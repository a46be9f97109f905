"""`pcclip generate`: comparatives from an LLM for image pairs, class pairs or class descriptions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.generation.plan import Kind
from pcclip_cli.llm.hf import Dtype

from .console import JsonOption, chosen_device, emit_json, err, progress_bar, warn


def command(
    ctx: typer.Context,
    llm: Annotated[str, typer.Option(help="LLM name (see `pcclip models`), a .gguf path, or BACKEND:TARGET.")],
    out: Annotated[Path, typer.Option(help="Output JSONL; appended to, and resumed if it exists.")],
    captions: Annotated[Path | None, typer.Option(help="captions.jsonl (for --kind pairs).")] = None,
    kind: Annotated[Kind, typer.Option(help="What to generate.")] = Kind.pairs,
    classes: Annotated[Path | None, typer.Option(
        help="Class names one per line (.txt), or a JSONL of class pairs with first/second.")] = None,
    pairs: Annotated[int | None, typer.Option(help="Seeded random ordered pairs instead of all of them.")] = None,
    all_pairs: Annotated[bool, typer.Option("--all-pairs", help="Every ordered pair (the default).")] = False,
    images: Annotated[int | None, typer.Option(help="Use only the first N images of the captions file.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --pairs sampling and for sampling at temperature > 0.")] = 0,
    prompt: Annotated[str | None, typer.Option(
        help="Prompt name (coco, cub, shapes, classes, descriptions, ...) or a .toml/.txt path.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Keep at most this many generated tokens (paper: 80).")] = 80,
    temperature: Annotated[float, typer.Option(help="0 is greedy decoding.")] = 0.0,
    batch_size: Annotated[int, typer.Option(
        help="Items decoded together (llamacpp, transformers); their shared prompt prefix is read once.")] = 8,
    shard: Annotated[str, typer.Option(help="I/N: generate only shard I (from 0) of N.")] = "0/1",
    n: Annotated[int, typer.Option("--n", help="Descriptions per class (--kind descriptions).")] = 1,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://host:8000/v1.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight (openai backend; default 4).")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries per request on 429/5xx/timeouts (openai; 5).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per request (openai; default 60).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (llamacpp; default all cores).")] = None,
    grammar: Annotated[Path | None, typer.Option(
        help="GBNF grammar every completion must follow (llamacpp), e.g. pcclip_cli/prompts/shapes.gbnf.")] = None,
    dtype: Annotated[Dtype | None, typer.Option(
        help="Weights' dtype (transformers; default bfloat16 on GPU, float32 on CPU). bfloat16 on a CPU with "
             "AMX (Xeon Sapphire Rapids and later) is several times faster.")] = None,
    chat: Annotated[bool, typer.Option(
        "--chat", help="Wrap each prompt in the model's chat template (transformers, llamacpp); the paper "
                       "completes the raw prompt.")] = False,
    llm_option: Annotated[list[str] | None, typer.Option(
        "--llm-option", help="KEY=VALUE: any field of the backend's options (repeatable), e.g. n_ctx=4096 "
                             "(llamacpp) or api=chat (openai); see docs/generation.md.")] = None,
    json_out: JsonOption = False,
):
    """Generate comparatives with an LLM; a killed run started again resumes without duplicates."""
    from pcclip_cli.core.errors import PcclipError
    from pcclip_cli.generation.run import GenerateConfig, prepare
    from pcclip_cli.llm.registry import backend_options

    if all_pairs and pairs is not None:
        raise PcclipError("--all-pairs and --pairs N exclude each other")
    # Which backend takes which flag is the backends' own declaration (llm/registry.py).
    flags = {"--base-url": base_url, "--concurrency": concurrency, "--retries": retries, "--timeout": timeout,
             "--threads": threads, "--grammar": str(grammar) if grammar is not None else None,
             "--dtype": dtype.value if dtype is not None else None, "--chat": True if chat else None}
    given = backend_options(llm, flags, llm_option)
    if kind is Kind.descriptions and n > 1 and temperature == 0 and llm != "template":  # the oracle varies its own
        warn("--n > 1 at --temperature 0 repeats the same greedy description; set --temperature 0.7 or so")
    cfg = GenerateConfig(llm=llm, out=out, kind=kind.value, captions=captions, classes=classes, pairs=pairs,
                         images=images, seed=seed, prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                         batch_size=batch_size, shard=shard, n=n, backend_options=given)
    job = prepare(cfg, device=chosen_device(ctx))  # bad input fails here, before the progress bar is drawn
    with progress_bar(f"generating {kind.value}", enabled=not json_out) as progress:
        result = job.run(progress)
    summary = result.to_dict()
    if json_out:
        emit_json(summary)
        return
    rate = f", {summary['tokens_per_s']} tok/s" if summary["tokens_per_s"] else ""
    err.print(f"{summary['generated']} new, {summary['skipped']} already done, {summary['total']} in shard "
              f"{summary['shard']}: {out} ({summary['llm']} via {summary['backend']}, prompt {summary['prompt']}; "
              f"{summary['llm_calls']} LLM calls, {summary['retries']} retries{rate})")
    if summary["repaired_bytes"]:
        err.print(f"cut a torn last line ({summary['repaired_bytes']} bytes) left by an interrupted run")
