"""Benchmark `pcclip generate`: batched vs one-at-a-time decoding, concurrent vs sequential OpenAI-backend
throughput, tokens/s per backend, the cost of re-running a finished run, and the memory of streaming pairs.

    .venv/bin/python benchmarks/bench_generate.py --sections batched,openai     # the throughput goals
    .venv/bin/python benchmarks/bench_generate.py                                 # everything

Everything runs on one shapes world (built in a temporary directory) with the shapes few-shot prompt, greedy
decoding and the same pairs, so the numbers are side by side.
- batched: smollm2-135m and gemma3-270m through llama.cpp (batches of `--batch-size`) and through transformers
  (`-hf`, batches of `--hf-batch-size` in `--hf-dtype`), the same prompts one at a time and batched, 40 new
  tokens; pairs/s, tokens/s, the ratio, and how many texts are identical.
- openai: the openai backend at concurrency 1 and 8 against a local server on 127.0.0.1 that serves requests
  concurrently the way vLLM does: requests that arrive together are decoded together (batched decoding of
  `--server-llm` in one process; `BatchingServer` below). llama-cpp-python's own server decodes one
  request at a time, so no client concurrency could speed it up. Sequential and concurrent rounds alternate so
  that load from other processes hits both alike.
- rss: every ordered pair of 1,000 captions (999,000 prompts rendered) streamed in a fresh process, peak RSS
  against a process that only reads the captions, and one that materialises the list.
The tables go to stderr; the ratios go to stdout as JSON rows (jsonrows.py) for benchmarks/run.py.
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
from collections import Counter
from pathlib import Path

import jsonrows  # benchmarks/ is the script's own directory

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def requests_for(world: Path, n: int):
    from pcclip_cli.generation.plan import GenerateConfig, pairs_plan
    from pcclip_cli.generation.prompts import load_prompt

    cfg = GenerateConfig(llm="template", out=None, captions=world / "captions.jsonl", pairs=n, seed=0)
    return list(pairs_plan(cfg, load_prompt("shapes")).items())


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
    from pcclip_cli.generation.run import GenerateConfig, generate

    out = tmp / f"rerun-{llm}.jsonl"
    cfg = dict(llm=llm, out=out, captions=world / "captions.jsonl", pairs=pairs, prompt="shapes",
               max_tokens=max_tokens)
    t0 = time.perf_counter()
    first = generate(GenerateConfig(**cfg))
    t1 = time.perf_counter()
    again = generate(GenerateConfig(**cfg))
    t2 = time.perf_counter()
    return {"llm": llm, "pairs": pairs, "first_s": round(t1 - t0, 3), "first_llm_calls": first.llm_calls,
            "rerun_s": round(t2 - t1, 3), "rerun_llm_calls": again.llm_calls,
            "rerun_fraction": round((t2 - t1) / (t1 - t0), 4)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BatchingServer:
    """An OpenAI-compatible /v1/completions server on 127.0.0.1 that decodes concurrent requests together.

    Handler threads queue their request; one decoder thread takes what is queued (waiting `window_s` for more
    once the first arrives, up to `max_batch`) and completes it as one batch with the library's llama.cpp
    backend, so a single request runs the one-at-a-time path and eight concurrent ones run batched.
    """

    def __init__(self, llm: str, max_batch: int = 8, window_s: float = 0.01, **opts):
        import queue
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from pcclip_cli.llm import get_llm

        self.llm = get_llm(llm, **opts)
        self.max_batch, self.window_s = max_batch, window_s
        self.queue: queue.Queue = queue.Queue()
        self.batches: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, body: dict):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "smollm2", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                done = threading.Event()
                slot: dict = {}
                server.queue.put((body, slot, done))
                done.wait()
                comp = slot["completion"]
                self._send({"id": "cmpl-bench", "object": "text_completion", "created": int(time.time()),
                            "model": body.get("model", ""), "choices": [{"index": 0, "text": comp.text,
                            "logprobs": None, "finish_reason": comp.finish}],
                            "usage": {"prompt_tokens": 0, "completion_tokens": comp.tokens,
                                      "total_tokens": comp.tokens}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.threads = [threading.Thread(target=self.httpd.serve_forever, daemon=True),
                        threading.Thread(target=self._decode_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def _decode_loop(self):
        import queue

        from pcclip_cli.llm import Params, Request

        while True:
            items = [self.queue.get()]
            deadline = time.perf_counter() + self.window_s
            while len(items) < self.max_batch:
                try:
                    items.append(self.queue.get(timeout=max(0.0, deadline - time.perf_counter())))
                except queue.Empty:
                    break
            body = items[0][0]
            params = Params(max_tokens=int(body.get("max_tokens", 16)), temperature=float(body.get("temperature",
                            0.0)), stop=tuple(body.get("stop") or ()), seed=int(body.get("seed") or 0))
            reqs = [Request(str(k), b["prompt"]) for k, (b, _, _) in enumerate(items)]
            self.batches.append(len(reqs))
            for (_, slot, done), comp in zip(items, self.llm.complete(reqs, params), strict=True):
                slot["completion"] = comp
                done.set()

    def close(self):
        self.httpd.shutdown()
        self.llm.close()


def openai_ratio(url: str, reqs, max_tokens: int, concurrency: int, rounds: int) -> dict:
    from pcclip_cli.llm import Params, get_llm

    params = Params(max_tokens=max_tokens)
    times = {1: [], concurrency: []}
    texts = {}
    for _ in range(rounds):
        for c in (1, concurrency):
            llm = get_llm("openai:smollm2", base_url=url, concurrency=c)
            t0 = time.perf_counter()
            texts[c] = {r.key: comp.text for r, comp in llm.stream(reqs, params)}
            times[c].append(time.perf_counter() - t0)
    seq, conc = sum(times[1]), sum(times[concurrency])
    return {"items": len(reqs), "rounds": rounds, "concurrency": concurrency,
            "sequential_items_per_s": round(rounds * len(reqs) / seq, 2),
            "concurrent_items_per_s": round(rounds * len(reqs) / conc, 2),
            "ratio_concurrent_over_sequential": round(seq / conc, 2),
            "identical_texts": sum(texts[1][k] == texts[concurrency][k] for k in texts[1])}


def backend_options(name: str, args) -> dict:
    from pcclip_cli.llm.registry import resolve

    if resolve(name)[1] == "transformers":
        return {"device": "cpu", "dtype": args.hf_dtype}
    return {"n_threads": args.threads}


def batched_vs_single(name: str, reqs, max_tokens: int, batch_size: int, opts: dict) -> dict:
    """The same prompts one at a time and in batches, on one loaded model, timed back to back."""
    from pcclip_cli.llm import Params, get_llm

    llm = get_llm(name, **opts)
    params = Params(max_tokens=max_tokens)
    row: dict = {"llm": name, "items": len(reqs), "batch_size": batch_size, "max_tokens": max_tokens}
    texts = {}
    for label, bs in (("one", 1), ("batched", batch_size)):
        tokens0 = llm.stats.tokens
        t0 = time.perf_counter()
        texts[label] = [c.text for _, c in llm.stream(reqs, params, batch_size=bs)]
        wall = time.perf_counter() - t0
        tokens = llm.stats.tokens - tokens0
        row[label] = {"wall_s": round(wall, 2), "pairs_per_s": round(len(reqs) / wall, 3),
                      "tokens": tokens, "tokens_per_s": round(tokens / wall, 1)}
    llm.close()
    row["ratio"] = round(row["batched"]["pairs_per_s"] / row["one"]["pairs_per_s"], 2)
    row["identical_texts"] = sum(a == b for a, b in zip(texts["one"], texts["batched"], strict=True))
    return row


_RSS_CODE = r"""
import json, sys
from pathlib import Path
from pcclip_cli.generation.plan import GenerateConfig, pairs_plan
from pcclip_cli.generation.prompts import load_prompt
mode, captions = sys.argv[1], Path(sys.argv[2])
plan = pairs_plan(GenerateConfig(llm="template", out=None, captions=captions), load_prompt("coco"))
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
    ap.add_argument("--items", type=int, default=32, help="pairs per measurement")
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32, help="batched decoding: items per batch")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2, help="alternating sequential/concurrent rounds")
    ap.add_argument("--llms", default="smollm2-135m,gemma3-270m,smollm2-135m-hf,gemma3-270m-hf",
                    help="models for the batched section")
    ap.add_argument("--hf-batch-size", type=int, default=64, help="items per batch for transformers models")
    ap.add_argument("--hf-dtype", default="bfloat16", help="transformers dtype (bfloat16 uses AMX where present)")
    ap.add_argument("--server-llm", default="smollm2-135m-hf", help="the local batching server's model")
    ap.add_argument("--server-window-ms", type=float, default=10.0,
                    help="how long the server gathers requests after the first before decoding them together")
    ap.add_argument("--skip-transformers", action="store_true", help="skip the ~30 s GGUF dequantisation")
    ap.add_argument("--rss-images", type=int, default=1000)
    ap.add_argument("--sections", default="batched,openai,tokens,rerun,rss",
                    help="comma-separated subset of batched,openai,tokens,rerun,rss")
    args = ap.parse_args()
    jsonrows.people_to_stderr()
    sections = set(args.sections.split(","))

    from pcclip_cli.data.shapes import WorldConfig, build_world

    results: dict = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("PCCLIP_HOME", str(tmp / "home"))
        world = tmp / "world"
        build_world(world, WorldConfig(images=80, seed=0))
        reqs = requests_for(world, max(args.items, args.hf_batch_size))

        if "batched" in sections:
            results["batched"] = []
            for name in args.llms.split(","):
                opts = backend_options(name, args)
                hf = "dtype" in opts
                n = args.hf_batch_size if hf else args.batch_size
                results["batched"].append(batched_vs_single(name, reqs[: max(args.items, n) if hf else args.items],
                                                            args.max_tokens, n, opts))
                print(json.dumps({"batched_row": results["batched"][-1]}), flush=True)  # kept if a later one dies
        if "openai" in sections:
            server = BatchingServer(args.server_llm, max_batch=args.concurrency,
                                    window_s=args.server_window_ms / 1000, **backend_options(args.server_llm, args))
            try:
                results["openai_concurrency"] = openai_ratio(server.url, reqs[: 2 * args.concurrency],
                                                             args.max_tokens, args.concurrency, args.rounds)
                results["openai_concurrency"]["server_batch_sizes"] = dict(
                    sorted(Counter(server.batches).items()))
            finally:
                server.close()
        if "rss" in sections:
            results["streaming_rss"] = streaming_rss(tmp, args.rss_images)
        if "tokens" in sections:
            few = reqs[:8]
            rows = [tokens_per_s("template", few, args.max_tokens),
                    tokens_per_s("smollm2-135m", few, args.max_tokens),
                    tokens_per_s("gemma3-270m", few, args.max_tokens)]
            if not args.skip_transformers:
                rows.append(tokens_per_s("smollm2-135m-hf", few[:4], args.max_tokens, device="cpu"))
            results["tokens_per_s"] = rows
        if "rerun" in sections:
            results["rerun"] = [rerun_cost(world, tmp, "template", 1000, args.max_tokens),
                                rerun_cost(world, tmp, "smollm2-135m", 8, args.max_tokens)]
    results["load_avg_end"] = os.getloadavg()[0]
    report(results, args)
    print(json.dumps(results))
    emit_rows(results, args)


def emit_rows(results: dict, args) -> None:
    for r in results.get("batched", []):
        jsonrows.emit("generate", f"batched / one at a time, pairs/s ({r['llm']}, batches of {r['batch_size']})",
                      r["batched"]["pairs_per_s"] / r["one"]["pairs_per_s"],
                      detail=f"{r['items']} items; {r['batched']['pairs_per_s']} vs {r['one']['pairs_per_s']} pairs/s; "
                             f"identical texts {r['identical_texts']}/{r['items']}")
    oc = results.get("openai_concurrency")
    if oc:
        jsonrows.emit("generate", f"OpenAI backend, concurrency {oc['concurrency']} / sequential (items/s)",
                      oc["ratio_concurrent_over_sequential"],
                      detail=f"local batching server ({args.server_llm}), {oc['items']} items x {oc['rounds']} "
                             f"alternating rounds: {oc['concurrent_items_per_s']} vs {oc['sequential_items_per_s']} "
                             f"items/s; identical texts {oc['identical_texts']}/{oc['items']}")
    for r in results.get("rerun", []):
        if r["first_llm_calls"]:
            jsonrows.emit("generate", f"re-run of a finished run / the first run ({r['llm']}, {r['pairs']} pairs)",
                          r["rerun_fraction"], unit="fraction",
                          detail=f"{r['rerun_s']} s and {r['rerun_llm_calls']} LLM calls vs {r['first_s']} s and "
                                 f"{r['first_llm_calls']} calls")
    rss = results.get("streaming_rss")
    if rss:
        base, stream, lst = rss["baseline"], rss["stream"], rss["list"]
        jsonrows.emit("generate", f"peak RSS streaming all {stream['items']:,} ordered pairs / reading the captions "
                      "only", stream["peak_rss_mb"] / base["peak_rss_mb"],
                      detail=f"{stream['peak_rss_mb']:.0f} MB vs {base['peak_rss_mb']:.0f} MB (a materialised list: "
                             f"{lst['peak_rss_mb']:.0f} MB); streamed in {stream['seconds']} s")


def report(results: dict, args) -> None:
    if results.get("batched"):
        print(f"{'llm':16} {'items':>5} {'batch':>5} {'one pairs/s':>11} {'batched pairs/s':>15} {'one tok/s':>9} "
              f"{'batched tok/s':>13} {'ratio':>6} {'identical':>9}")
        for r in results["batched"]:
            print(f"{r['llm']:16} {r['items']:>5} {r['batch_size']:>5} {r['one']['pairs_per_s']:>11} "
                  f"{r['batched']['pairs_per_s']:>15} {r['one']['tokens_per_s']:>9} "
                  f"{r['batched']['tokens_per_s']:>13} {r['ratio']:>5}x {r['identical_texts']:>5}/{r['items']}")
    if "openai_concurrency" in results:
        oc = results["openai_concurrency"]
        print(f"openai backend vs a local batching server ({args.server_llm}): sequential {oc['sequential_items_per_s']} "
              f"items/s, concurrency {oc['concurrency']} {oc['concurrent_items_per_s']} items/s, ratio "
              f"{oc['ratio_concurrent_over_sequential']}x; identical texts {oc['identical_texts']}/{oc['items']}; "
              f"server batch sizes {oc['server_batch_sizes']}")
    if results.get("tokens_per_s"):
        print(f"{'llm':18} {'backend':12} {'items':>5} {'tokens':>6} {'load s':>7} {'tok/s':>7} {'items/s':>7}")
        for r in results["tokens_per_s"]:
            print(f"{r['llm']:18} {r['backend']:12} {r['items']:>5} {r['tokens']:>6} {r['load_s']:>7} "
                  f"{r['tokens_per_s']:>7} {r['items_per_s']:>7}")
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


if __name__ == "__main__":
    main()
