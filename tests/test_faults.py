"""Fault injection with real processes: SIGKILL `generate` and `train` at random moments and resume them, and an
OpenAI-compatible server on 127.0.0.1 (real SmolLM2 behind it) that answers 429, then 500, then stalls.

The killed index build is covered by tests/test_index_kill.py. Kill moments are drawn from a seeded generator;
a failure message names the seed, and PCCLIP_FAULT_SEED=N replays it.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SEED = int(os.environ.get("PCCLIP_FAULT_SEED", "20240611"))


def pcclip_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "pcclip_cli.cli.main", *map(str, args)]


def line_count(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def kill_when(cmd: list[str], predicate, *, after_s: float | None = None, env: dict | None = None,
              timeout: float = 300.0) -> dict:
    """Start `cmd`, SIGKILL it once `predicate()` holds (or `after_s` seconds after it started), and report.

    Returns {"killed": the kill landed while it ran, "code": its exit status}. A process that finished first
    is not an error here: callers count how many kills landed.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    start = time.monotonic()
    try:
        while proc.poll() is None:
            if time.monotonic() - start > timeout:
                raise AssertionError(f"{cmd[3:5]} neither reached its kill moment nor finished in {timeout} s")
            if (after_s is not None and time.monotonic() - start >= after_s) or (after_s is None and predicate()):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    killed = proc.returncode == -signal.SIGKILL
    assert killed or proc.returncode == 0, f"exit {proc.returncode} before the kill: {stderr[-2000:]}"
    return {"killed": killed, "code": proc.returncode}


def read_records(path: Path) -> list[dict]:
    """Every line of a finished output file, each parsed; the file ends with a newline (no torn tail)."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the output ends in a torn line"
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def assert_one_record_per_item(path: Path, planned_keys: set[str]) -> list[dict]:
    recs = read_records(path)
    keys = [r["key"] for r in recs]
    dupes = sorted({k for k in keys if keys.count(k) > 1}) if len(set(keys)) != len(keys) else []
    assert not dupes, f"duplicated records: {dupes[:5]}"
    assert set(keys) == planned_keys, (f"missing {sorted(planned_keys - set(keys))[:5]}, "
                                       f"unplanned {sorted(set(keys) - planned_keys)[:5]}")
    return recs


# ---- generate -------------------------------------------------------------------------------------------------


def generate_with_kills(cmd: list[str], out: Path, kills: int, rng: random.Random, *, measure, final: int,
                        max_delay_s: float, env: dict | None = None) -> dict:
    """Kill `cmd` `kills` times: most kills once `measure(out)` (bytes or lines) has grown by a random amount, at
    most half of what is left, so there is always work after the kill however fast the machine is; every fourth
    one a random delay after start (interpreter start-up, model load, reading the keys already done)."""
    landed = mid_run = 0
    for k in range(kills):
        before = measure(out)
        if k % 4 == 0:
            res = kill_when(cmd, None, after_s=rng.uniform(0.0, max_delay_s), env=env)
        else:
            target = before + rng.randint(1, max(1, (final - before) // 2))
            res = kill_when(cmd, lambda t=target: measure(out) >= t, env=env)
        after = measure(out)
        landed += res["killed"]
        mid_run += res["killed"] and before < after < final
    return {"landed": landed, "mid_run": mid_run}


def finish(cmd: list[str], env: dict | None = None) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_template_generate_survives_20_kills(world, tmp_path):
    """Every ordered pair of 150 captions, killed 20 times: the result is the uninterrupted run's, exactly."""
    from pcclip_cli.generation.run import GenerateConfig, generate

    # 150 captions (the world's 60, repeated under new ids): 22,350 ordered pairs, about 2 s of generation, so
    # the kills land inside the run and not only in interpreter start-up.
    lines = (world / "captions.jsonl").read_text().splitlines()
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps({**json.loads(lines[k % 60]), "id": f"c{k:03d}",
                                            "image": str(world / json.loads(lines[k % 60])["image"])}) + "\n"
                                for k in range(150)))
    ref = tmp_path / "reference.jsonl"
    total = generate(GenerateConfig(llm="template", captions=captions, out=ref)).total
    # How long one whole run takes here, so the kills timed from the start land inside a run on any machine.
    started = time.monotonic()
    finish(pcclip_cmd("generate", "--llm", "template", "--captions", captions, "--out", tmp_path / "timed.jsonl",
                      "--json"))
    whole_run_s = time.monotonic() - started
    out = tmp_path / "killed.jsonl"
    cmd = pcclip_cmd("generate", "--llm", "template", "--captions", captions, "--out", out, "--json")
    rng = random.Random(SEED)
    stats = generate_with_kills(cmd, out, 20, rng, measure=file_size,
                                final=ref.stat().st_size, max_delay_s=0.5 * whole_run_s)
    assert stats["landed"] >= 15 and stats["mid_run"] >= 10, (stats, SEED)
    summary = finish(cmd)
    assert summary["total"] == total and summary["skipped"] + summary["generated"] == total
    ref_lines = ref.read_bytes().splitlines()
    recs = assert_one_record_per_item(out, {json.loads(line)["key"] for line in ref_lines})
    assert len(recs) == total
    # The same records, byte for byte, as the run that was never interrupted.
    assert set(out.read_bytes().splitlines()) == set(ref_lines)


def _smollm2_generate(world, tmp_path, pairs: int, kills: int, seed: int, batch_size: int = 1):
    from pcclip_cli.generation.run import GenerateConfig, generate

    captions = world / "captions.jsonl"
    plan = tmp_path / "plan.jsonl"  # the keys of the same plan, from the template backend (instant)
    generate(GenerateConfig(llm="template", captions=captions, out=plan, pairs=pairs, seed=3))
    planned = {r["key"] for r in read_records(plan)}
    out = tmp_path / "smol.jsonl"
    cmd = pcclip_cmd("generate", "--llm", "smollm2-135m", "--captions", captions, "--out", out, "--pairs", pairs,
                     "--seed", 3, "--prompt", "shapes", "--max-tokens", 8, "--threads", 1, "--batch-size",
                     batch_size, "--json")
    rng = random.Random(seed)
    stats = generate_with_kills(cmd, out, kills, rng, measure=line_count, final=pairs,
                                max_delay_s=1.0)
    summary = finish(cmd)
    assert summary["skipped"] + summary["generated"] == pairs and summary["llm_calls"] == summary["generated"]
    recs = assert_one_record_per_item(out, planned)
    assert all(r["llm"] == "smollm2-135m" and r["backend"] == "llamacpp" and isinstance(r["text"], str)
               for r in recs)
    return stats, recs


def test_batched_smollm2_generate_survives_kills(world, tmp_path):
    """Batches of 4 are written record by record: a kill may land between two records of one batch. The resumed
    run regenerates exactly the missing items, in new batches, and greedy decoding gives them the same texts."""
    stats, recs = _smollm2_generate(world, tmp_path, pairs=16, kills=3, seed=SEED + 2, batch_size=4)
    assert stats["landed"] >= 2, (stats, SEED + 2)
    ref = tmp_path / "uninterrupted.jsonl"
    finish(pcclip_cmd("generate", "--llm", "smollm2-135m", "--captions", world / "captions.jsonl", "--out", ref,
                      "--pairs", 16, "--seed", 3, "--prompt", "shapes", "--max-tokens", 8, "--threads", 1,
                      "--batch-size", 16, "--json"))
    assert {r["key"]: r["text"] for r in recs} == {r["key"]: r["text"] for r in read_records(ref)}


def test_smollm2_generate_survives_kills(world, tmp_path):
    # 16 pairs: enough work that the line-count kills land however fast the machine is.
    stats, _ = _smollm2_generate(world, tmp_path, pairs=16, kills=3, seed=SEED)
    assert stats["landed"] >= 2, (stats, SEED)


@pytest.mark.slow
def test_smollm2_generate_survives_20_kills(world, tmp_path):
    stats, _ = _smollm2_generate(world, tmp_path, pairs=30, kills=20, seed=SEED + 1, batch_size=4)
    assert stats["landed"] >= 15 and stats["mid_run"] >= 8, (stats, SEED + 1)


# ---- train ----------------------------------------------------------------------------------------------------

TRAIN_MISSING = importlib.util.find_spec("pcclip_cli.cli.train") is None


def _train_args(world, pairs: Path, out: Path, epochs: int) -> list:
    return ["--model", "pcclip-micro", "--comparatives", pairs, "--captions", world / "captions.jsonl", "--out", out,
            "--lr", "1e-3", "--epochs", epochs, "--batch-size", 32, "--seed", 5, "--save-every", 1,
            "--log-every", 1]


def _step_records(run: Path) -> int:
    try:
        text = (run / "metrics.jsonl").read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    return text.count('"event": "step"')


def _train_kill_resume(world, tmp_path, pairs_n: int, epochs: int, kills: int, seed: int):
    import torch
    from safetensors.torch import load_file

    from pcclip_cli.finetune import train
    from pcclip_cli.training import TrainConfig
    from pcclip_cli.training.pair_data import oracle_comparatives

    pairs = tmp_path / "pairs.jsonl"
    oracle_comparatives(world, pairs, pairs=pairs_n, split=None, seed=2)
    steps_per_epoch = pairs_n // 32
    total_steps = steps_per_epoch * epochs
    # The same thread count in every process: float sums may depend on how the work is split.
    threads = torch.get_num_threads()
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PCCLIP_DEVICE": "cpu"}
    run = tmp_path / "killed"
    # Kill moments past the first epoch's checkpoint, so each resume has something to resume from. A resume
    # trims metrics.jsonl back to its checkpoint, so the step count passes each later target again.
    targets = sorted(random.Random(seed).sample(range(steps_per_epoch + 1, total_steps), kills))
    resumed_from_checkpoint = 0
    for k, target in enumerate(targets):
        cmd = pcclip_cmd("train", *(["--resume", run] if k else _train_args(world, pairs, run, epochs)), "--json")
        res = kill_when(cmd, lambda t=target: _step_records(run) >= t, env=env)
        assert res["killed"], f"training finished before step {target} (seed {seed})"
        resumed_from_checkpoint += any((run / "checkpoints").glob("epoch-*"))
    assert resumed_from_checkpoint == kills
    summary = finish(pcclip_cmd("train", "--resume", run, "--json"), env=env)
    assert summary["resumed_from"] and summary["steps"] == total_steps

    torch.set_num_threads(threads)
    ref = tmp_path / "uninterrupted"
    train(TrainConfig(model="pcclip-micro", comparatives=str(pairs), captions=str(world / "captions.jsonl"),
                      out=str(ref), lr=1e-3, epochs=epochs, batch_size=32, seed=5, save_every=1, log_every=1))
    got, want = load_file(str(run / "model.safetensors")), load_file(str(ref / "model.safetensors"))
    assert set(got) == set(want)
    differ = [k for k in want if not torch.equal(got[k], want[k])]
    assert not differ, f"{len(differ)} tensors differ from the uninterrupted run, e.g. {differ[:3]} (seed {seed})"
    # metrics.jsonl reads like one clean run: each step once.
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()
             if '"event": "step"' in ln]
    assert steps == list(range(1, total_steps + 1))


@pytest.mark.skipif(TRAIN_MISSING, reason="`pcclip train` is not built yet (pcclip_cli/cli/train.py is absent)")
def test_killed_training_resumes_to_the_same_weights(world, tmp_path):
    _train_kill_resume(world, tmp_path, pairs_n=96, epochs=3, kills=1, seed=SEED)


@pytest.mark.slow
@pytest.mark.skipif(TRAIN_MISSING, reason="`pcclip train` is not built yet (pcclip_cli/cli/train.py is absent)")
def test_training_killed_three_times_resumes_to_the_same_weights(world, tmp_path):
    _train_kill_resume(world, tmp_path, pairs_n=160, epochs=5, kills=3, seed=SEED + 2)


# ---- an OpenAI-compatible server that misbehaves ------------------------------------------------------------


class LocalLLMServer:
    """`/v1/completions` on 127.0.0.1, answered by the real SmolLM2 GGUF through llama.cpp, after scripted faults.

    `faults` is consumed one per request, in arrival order: "429", "500", "stall" (hold the request `stall_s`
    seconds, then drop it), or "401-echo" (a refusal whose message quotes the request's Authorization header, as
    some proxies do). Every request is logged with what it got and the Authorization header it carried.
    """

    def __init__(self, faults=(), stall_s: float = 5.0, warm_prompt: str | None = None):
        from llama_cpp import Llama

        from pcclip_cli.llm.registry import smollm2_path

        self.faults = list(faults)
        self.stall_s = stall_s
        self._closing = threading.Event()
        self.log: list[dict] = []
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._llama = Llama(model_path=str(smollm2_path()), n_ctx=2048, n_threads=2, verbose=False)
        self.latency_s = 0.0
        if warm_prompt:
            # Read the few-shot prefix into the KV cache once, then time one answer like the ones to come: the
            # client's timeout is set well above it, so that only the injected stall exceeds it, however busy
            # the machine is.
            self._llama.create_completion(warm_prompt, max_tokens=1)
            t0 = time.perf_counter()
            self._llama.create_completion(warm_prompt + " ", max_tokens=8)
            self.latency_s = time.perf_counter() - t0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with server._lock:
                    fault = server.faults.pop(0) if server.faults else None
                    server.log.append({"path": self.path, "fault": fault,
                                       "authorization": self.headers.get("authorization", "")})
                if fault == "stall":
                    server._closing.wait(server.stall_s)
                    self.close_connection = True
                    return
                if fault in ("429", "500"):
                    return self._json(int(fault), {"error": {"message": f"injected {fault}", "type": "server_error"}})
                if fault == "401-echo":
                    auth = self.headers.get("authorization", "")
                    return self._json(401, {"error": {"message": f"Incorrect API key provided: {auth}",
                                                      "type": "invalid_request_error"}})
                if not self.path.endswith("/completions"):
                    return self._json(404, {"error": {"message": f"no route {self.path}"}})
                with server._model_lock:
                    if server._llama is None:
                        return self._json(503, {"error": {"message": "shutting down"}})
                    res = server._llama.create_completion(
                        body["prompt"], max_tokens=body.get("max_tokens", 16), temperature=body.get("temperature", 0),
                        stop=body.get("stop"), seed=body.get("seed"), repeat_penalty=1.0)
                self._json(200, res)

            def _json(self, code: int, obj: dict):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._model_lock:  # never free the model under a request still being answered
            self._llama.close()
            self._llama = None


def _openai_generate(world, tmp_path, faults, concurrency: int, pairs: int = 6):
    from pcclip_cli.generation.run import GenerateConfig, generate

    captions = world / "captions.jsonl"
    plan = tmp_path / "plan.jsonl"
    generate(GenerateConfig(llm="template", captions=captions, out=plan, pairs=pairs, seed=4))
    out = tmp_path / "openai.jsonl"
    from pcclip_cli.generation.prompts import load_prompt

    warm = load_prompt("shapes").render(first_caption="a red circle", second_caption="a blue star")
    # A stalled request is held far longer than any timeout; the client gives up on it at its timeout.
    with LocalLLMServer(faults, stall_s=300.0, warm_prompt=warm) as server:
        timeout = round(max(3.0, 1.0 + 2 * concurrency * server.latency_s), 1)
        summary = finish(pcclip_cmd(
            "generate", "--llm", "openai:smollm2", "--base-url", server.url, "--captions", captions, "--out", out,
            "--pairs", pairs, "--seed", 4, "--prompt", "shapes", "--max-tokens", 8, "--timeout", timeout,
            "--retries", 3, "--concurrency", concurrency, "--json"), env={"OPENAI_API_KEY": "sk-local-test"})
        log = list(server.log)
    recs = assert_one_record_per_item(out, {r["key"] for r in read_records(plan)})
    assert all(r["backend"] == "openai" and isinstance(r["text"], str) for r in recs)
    assert summary["generated"] == pairs and summary["llm_calls"] == pairs
    # Each fault cost exactly one retry, and the output says so.
    assert summary["retries"] == len(faults), (summary, f"timeout {timeout} s, answer {server.latency_s:.2f} s")
    assert [e["fault"] for e in log[: len(faults)]] == list(faults) and len(log) == pairs + len(faults)
    return recs


def test_openai_backend_rides_out_429_500_and_a_stall(world, tmp_path):
    """Two requests in flight: the first three answers are a 429, a 500 and a stall; each is retried once and
    every record lands."""
    _openai_generate(world, tmp_path, ["429", "500", "stall"], concurrency=2)


@pytest.mark.slow
def test_one_request_meets_429_then_500_then_a_stall_then_succeeds(world, tmp_path):
    """One request at a time: the first request is answered 429, then 500, then stalls, then succeeds."""
    _openai_generate(world, tmp_path, ["429", "500", "stall"], concurrency=1)
