"""Benchmark `pcclip generate`: tokens/s per backend, the cost of re-running a finished run, concurrent vs
sequential OpenAI-backend throughput against a local llama.cpp server, and the memory of streaming pairs.

    .venv/bin/python benchmarks/bench_generate.py                 # about 5-10 minutes on 2 cores
    .venv/bin/python benchmarks/bench_generate.py --items 4 --skip-transformers

Everything runs on one shapes world (built in a temporary directory) with the shapes few-shot prompt, greedy
decoding and the same pairs for every backend, so the numbers are side by side. The OpenAI comparison alternates
sequential and concurrent rounds so that load from other processes hits both alike; it reports the ratio.
The memory case streams every ordered pair of 1,000 captions (999,000 prompts rendered) in a fresh process and
compares its peak RSS with a process that only reads the captions, and with one that materialises the list.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def requests_for(world: Path, n: int):
    from pcclip_cli.generation import GenerateConfig, _pairs_plan
    from pcclip_cli.prompts import load_prompt

    cfg = GenerateConfig(llm="template", out=None, captions=world / "captions.jsonl", pairs=n, seed=0)
    return list(_pairs_plan(cfg, load_prompt("shapes")).items())


def tokens_per_s(name: str, reqs, max_tokens: int, **opts) -> dict:
    """Load `name`, then time greedy completions of `reqs` (load time reported apart)."""
    from pcclip_cli.llm import Params, get_llm

    t0 = time.perf_counter()
    llm = get_llm(name, **opts)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in llm.stream(reqs, Params(max_tokens=max_tokens), batch_size=len(reqs)):
        pass
    wall = time.perf_counter() - t0
    return {"llm": name, "backend": llm.backend, "items": len(reqs), "tokens": llm.stats.tokens,
            "load_s": round(load, 2), "wall_s": round(wall, 2), "tokens_per_s": round(llm.stats.tokens / wall, 1),
            "items_per_s": round(len(reqs) / wall, 2)}


def rerun_cost(world: Path, tmp: Path, llm: str, pairs: int, max_tokens: int) -> dict:
    from pcclip_cli.generation import GenerateConfig, generate

    out = tmp / f"rerun-{llm}.jsonl"
    cfg = dict(llm=llm, out=out, captions=world / "captions.jsonl", pairs=pairs, prompt="shapes",
               max_tokens=max_tokens)
    t0 = time.perf_counter()
    first = generate(GenerateConfig(**cfg))
    t1 = time.perf_counter()
    again = generate(GenerateConfig(**cfg))
    t2 = time.perf_counter()
    return {"llm": llm, "pairs": pairs, "first_s": round(t1 - t0, 3), "first_llm_calls": first["llm_calls"],
            "rerun_s": round(t2 - t1, 3), "rerun_llm_calls": again["llm_calls"],
            "rerun_fraction": round((t2 - t1) / (t1 - t0), 4)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path):
    from pcclip_cli.llm.registry import smollm2_path

    port = free_port()
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--verbose", "False"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise SystemExit(f"llama.cpp server did not start; see {tmp / 'server.log'}") from None
            time.sleep(0.3)


def openai_ratio(url: str, reqs, max_tokens: int, concurrency: int, rounds: int) -> dict:
    from pcclip_cli.llm import Params, get_llm

    params = Params(max_tokens=max_tokens)
    times = {1: [], concurrency: []}
    tokens = {}
    for _ in range(rounds):
        for c in (1, concurrency):
            llm = get_llm("openai:smollm2", base_url=url, concurrency=c, extra_body={"repeat_penalty": 1.0})
            t0 = time.perf_counter()
            for _ in llm.stream(reqs, params):
                pass
            times[c].append(time.perf_counter() - t0)
            tokens[c] = llm.stats.tokens
    seq, conc = sum(times[1]), sum(times[concurrency])
    return {"items": len(reqs), "rounds": rounds, "concurrency": concurrency,
            "sequential_items_per_s": round(rounds * len(reqs) / seq, 2),
            "concurrent_items_per_s": round(rounds * len(reqs) / conc, 2),
            "ratio_concurrent_over_sequential": round(seq / conc, 2), "same_tokens": tokens[1] == tokens[concurrency]}


_RSS_CODE = r"""
import json, sys
from pathlib import Path
from pcclip_cli.generation import GenerateConfig, _pairs_plan
from pcclip_cli.prompts import load_prompt
mode, captions = sys.argv[1], Path(sys.argv[2])
plan = _pairs_plan(GenerateConfig(llm="template", out=None, captions=captions), load_prompt("coco"))
n = 0
if mode == "stream":
    for req in plan.items():
        n += 1
elif mode == "list":
    n = len(list(plan.items()))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(json.dumps({"items": n, "peak_rss_mb": hwm / 1024}))
"""


def streaming_rss(tmp: Path, images: int) -> dict:
    captions = tmp / "captions1000.jsonl"
    with open(captions, "w") as fh:
        for i in range(images):
            fh.write(json.dumps({"id": f"img_{i:06d}", "image": f"images/{i}.png",
                                 "caption": f"a photo of a {['small', 'large'][i % 2]} object number {i}"}) + "\n")
    out = {}
    for mode in ("baseline", "stream", "list"):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _RSS_CODE, mode, str(captions)], capture_output=True, text=True,
                             check=True)
        out[mode] = {**json.loads(res.stdout), "seconds": round(time.perf_counter() - t0, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=8, help="pairs per backend for tokens/s")
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="alternating sequential/concurrent rounds")
    ap.add_argument("--skip-transformers", action="store_true", help="skip the ~30 s GGUF dequantisation")
    ap.add_argument("--rss-images", type=int, default=1000)
    ap.add_argument("--sections", default="tokens,threads,openai,rerun,rss",
                    help="comma-separated subset of tokens,threads,openai,rerun,rss")
    args = ap.parse_args()
    sections = set(args.sections.split(","))

    from pcclip_cli.shapes import WorldConfig, build_world

    results: dict = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("PCCLIP_HOME", str(tmp / "home"))
        world = tmp / "world"
        build_world(world, WorldConfig(images=40, seed=0))
        reqs = requests_for(world, args.items)

        if "rss" in sections:
            results["streaming_rss"] = streaming_rss(tmp, args.rss_images)
        if "tokens" in sections:
            rows = [tokens_per_s("template", reqs, args.max_tokens),
                    tokens_per_s("smollm2-135m", reqs, args.max_tokens),
                    tokens_per_s("gemma3-270m", reqs, args.max_tokens)]
            if not args.skip_transformers:
                rows.append(tokens_per_s("smollm2-135m-hf", reqs[:4], args.max_tokens, device="cpu"))
            results["tokens_per_s"] = rows
        if "threads" in sections:
            # llama.cpp's threads wait for each other at every layer; on a busy machine fewer can be faster.
            results["threads"] = [{**tokens_per_s("smollm2-135m", reqs, args.max_tokens, n_threads=t), "threads": t}
                                  for t in (1, os.cpu_count() or 1)]
        if "openai" in sections:
            proc, url = start_server(tmp)
            try:
                results.setdefault("tokens_per_s", []).append(
                    tokens_per_s("openai:smollm2", reqs, args.max_tokens, base_url=url, concurrency=1,
                                 extra_body={"repeat_penalty": 1.0}))
                results["openai_concurrency"] = openai_ratio(url, reqs, args.max_tokens, args.concurrency,
                                                             args.rounds)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        if "rerun" in sections:
            results["rerun"] = [rerun_cost(world, tmp, "template", 1000, args.max_tokens),
                                rerun_cost(world, tmp, "smollm2-135m", args.items, args.max_tokens)]
    results["load_avg_end"] = os.getloadavg()[0]

    print(f"{'llm':18} {'backend':12} {'items':>5} {'tokens':>6} {'load s':>7} {'tok/s':>7} {'items/s':>7}")
    for r in results.get("tokens_per_s", []) + results.get("threads", []):
        name = r["llm"] + (f" ({r['threads']} thr)" if "threads" in r else "")
        print(f"{name:18} {r['backend']:12} {r['items']:>5} {r['tokens']:>6} {r['load_s']:>7} "
              f"{r['tokens_per_s']:>7} {r['items_per_s']:>7}")
    if "openai_concurrency" in results:
        oc = results["openai_concurrency"]
        print(f"openai backend vs local llama.cpp server: sequential {oc['sequential_items_per_s']} items/s, "
              f"concurrency {oc['concurrency']} {oc['concurrent_items_per_s']} items/s, "
              f"ratio {oc['ratio_concurrent_over_sequential']}x")
    for r in results.get("rerun", []):
        print(f"re-run of a finished {r['llm']} run ({r['pairs']} pairs): {r['rerun_s']} s and "
              f"{r['rerun_llm_calls']} LLM calls, vs {r['first_s']} s and {r['first_llm_calls']} calls the first "
              f"time ({r['rerun_fraction']:.2%})")
    if "streaming_rss" in results:
        rss = results["streaming_rss"]
        print(f"all {rss['stream']['items']} ordered pairs of {args.rss_images} captions: peak RSS streamed "
              f"{rss['stream']['peak_rss_mb']:.0f} MB in {rss['stream']['seconds']} s (reading captions only: "
              f"{rss['baseline']['peak_rss_mb']:.0f} MB; materialised list: {rss['list']['peak_rss_mb']:.0f} MB)")
    print(f"load average {results['load_avg_start']:.1f} -> {results['load_avg_end']:.1f} on {results['cpus']} cpus")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
