"""The openai backend against llama-cpp-python's OpenAI-compatible server, started here on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from test_llm import shapes_requests

from conftest import CliResult, assert_clean_error
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.llm import Params, get_llm
from pcclip_cli.llm.openai_api import BackendUnavailable
from pcclip_cli.llm.registry import smollm2_path

SAME_AS_LLAMACPP = {"repeat_penalty": 1.0}  # the server's default is 1.1, llama.cpp's completion default 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real llama.cpp server with the SmolLM2 GGUF; yields its base URL."""
    port = free_port()
    # Its log goes to a file: a full pipe would block the server before it starts listening.
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w+b")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
                             "--verbose", "False"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                log.seek(0)
                pytest.fail(f"llama.cpp server did not start: {log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def flaky_proxy(server):
    """A proxy in front of the real server that answers the first requests with 429 and 503."""
    failures = ["429", "503"]
    seen = {"failed": 0, "forwarded": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if failures:
                code = int(failures.pop(0))
                seen["failed"] += 1
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"error": {"message": "busy"}}).encode())
                return
            req = urllib.request.Request(server.rsplit("/v1", 1)[0] + self.path, data=body,
                                         headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=120) as res:
                data = res.read()
            seen["forwarded"] += 1
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", seen
    httpd.shutdown()
    httpd.server_close()


def test_server_gives_the_same_greedy_text_as_llamacpp(server):
    reqs = shapes_requests(2)
    params = Params(max_tokens=20)
    local = {r.key: c.text for r, c in get_llm("smollm2-135m").stream(reqs, params)}
    remote_llm = get_llm("openai:smollm2", base_url=server, concurrency=3, extra_body=SAME_AS_LLAMACPP)
    remote = {r.key: c.text for r, c in remote_llm.stream(reqs, params)}
    assert remote == local
    assert remote_llm.stats.calls == 2 and remote_llm.stats.retries == 0 and remote_llm.stats.tokens > 0


def test_retries_on_429_and_503_are_counted(flaky_proxy):
    url, seen = flaky_proxy
    llm = get_llm("openai:smollm2", base_url=url, concurrency=1, retries=3, backoff=0.05,
                  extra_body=SAME_AS_LLAMACPP)
    comp = llm.complete(shapes_requests(1), Params(max_tokens=8))
    assert comp[0].text.strip()
    assert llm.stats.retries == 2 and seen == {"failed": 2, "forwarded": 1}


def test_server_down_fails_after_retries_saying_where():
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = get_llm("openai:smollm2", base_url=url, retries=2, backoff=0.01, concurrency=2)
    with pytest.raises(BackendUnavailable, match=r"failed 3 time\(s\).*APIConnectionError") as info:
        list(llm.stream(shapes_requests(), Params(max_tokens=5)))
    assert url in str(info.value)
    assert llm.stats.retries >= 2 and llm.stats.calls == 0


def test_missing_key_is_an_error_and_the_key_is_never_printed(monkeypatch, run_pcclip, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PcclipError, match="OPENAI_API_KEY is not set"):
        get_llm("gpt-4o")
    captions = tmp_path / "c.jsonl"
    captions.write_text('{"image": "a.png", "caption": "a red circle"}\n{"image": "b.png", "caption": "a star"}\n')
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    res = subprocess.run([sys.executable, "-m", "pcclip_cli.cli.main", "generate", "--llm", "gpt-4o", "--captions",
                          str(captions), "--out", str(tmp_path / "o.jsonl")], capture_output=True, text=True, env=env)
    assert_clean_error(CliResult(res.returncode, res.stdout, res.stderr), "OPENAI_API_KEY")
    assert not (tmp_path / "o.jsonl").exists()
    # A wrong key is refused by the server side; the message must not echo it.
    secret = "sk-pcclip-test-0123456789abcdef"
    down = run_pcclip("generate", "--llm", "openai:gpt-4o", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
                      "--retries", "0", "--captions", captions, "--out", tmp_path / "o.jsonl", "--json",
                      env={"OPENAI_API_KEY": secret})
    assert_clean_error(down, "failed 1 time(s)", "re-run the same command to resume")
    assert secret not in down.stderr + down.stdout


def test_concurrency_keeps_every_result(server):
    reqs = shapes_requests()
    llm = get_llm("openai:smollm2", base_url=server, concurrency=2, extra_body=SAME_AS_LLAMACPP)
    got = list(llm.stream(reqs, Params(max_tokens=6)))
    assert sorted(r.key for r, _ in got) == ["k0", "k1", "k2"]
