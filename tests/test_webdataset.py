"""Webdataset shards written with the webdataset library, read back through `pcclip data wds`, then indexed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from conftest import assert_clean_error

wds = pytest.importorskip("webdataset", reason="webdataset is not installed (pip install 'pcclip[scale]')")


def _png(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


def write_shards(folder: Path, per_shard=(4, 3), corrupt_key: str | None = None) -> list[Path]:
    """img2dataset's layout: KEY.jpg|png + KEY.txt + KEY.json per sample, keys unique across shards."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, n = [], 0
    for s, count in enumerate(per_shard):
        path = folder / f"{s:05d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for _ in range(count):
                key = f"{s:05d}{n:04d}"
                image = b"not a png at all" if key == corrupt_key else _png((40 * n % 255, 80, 120))
                sample = {"__key__": key, "png": image, "json": json.dumps({"url": f"http://x/{n}.png", "width": 16}).encode()}
                if n % 2 == 0:
                    sample["txt"] = f"a picture number {n}".encode()
                else:  # caption only in the json, as some writers do
                    sample["json"] = json.dumps({"caption": f"a picture number {n}", "width": 16}).encode()
                sink.write(sample)
                n += 1
        paths.append(path)
    return paths


def test_shards_convert_through_the_cli_and_index(cli, tmp_path):
    write_shards(tmp_path / "shards")
    out = tmp_path / "ds"
    result = cli("data", "wds", str(tmp_path / "shards" / "{00000..00001}.tar"), "--out", out, "--json")
    assert result.code == 0, result.stderr
    summary = result.json()
    assert (summary["shards"], summary["records"], summary["bad_images"], summary["truncated_shards"]) == (2, 7, 0, 0)
    rows = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert [r["caption"] for r in rows] == [f"a picture number {n}" for n in range(7)]
    assert rows[0]["attributes"]["url"] == "http://x/0.png" and rows[1]["id"] == "000000001"
    assert all((out / r["image"]).is_file() for r in rows)

    from pcclip_cli.data.records import read_captions

    assert len(read_captions(out / "captions.jsonl")) == 7  # what `train --captions` reads
    built = cli("index", out / "captions.jsonl", "--out", tmp_path / "idx", "--model", "pcclip-micro", "--json")
    assert built.code == 0, built.stderr
    assert built.json()["count"] == 7
    # A rerun finds every shard done and rewrites the same manifest.
    again = cli("data", "wds", str(tmp_path / "shards"), "--out", out, "--json").json()
    assert again["resumed_shards"] == 2 and again["records"] == 7
    assert [json.loads(x) for x in (out / "captions.jsonl").read_text().splitlines()] == rows


def test_pipe_url_reads_a_shard(cli, tmp_path):
    (shard,) = write_shards(tmp_path / "shards", per_shard=(3,))
    result = cli("data", "wds", f"pipe:cat {shard}", "--out", tmp_path / "ds", "--json")
    assert result.code == 0, result.stderr
    assert result.json()["records"] == 3


def test_corrupt_image_is_refused_or_skipped_and_counted(cli, tmp_path):
    write_shards(tmp_path / "shards", corrupt_key="000010004")
    stop = cli("data", "wds", tmp_path / "shards", "--out", tmp_path / "a")
    assert_clean_error(stop, "000010004", "corrupt", "--on-bad-image skip")
    assert not (tmp_path / "a" / "captions.jsonl").exists()
    skip = cli("data", "wds", tmp_path / "shards", "--out", tmp_path / "b", "--on-bad-image", "skip", "--json")
    assert skip.code == 0, skip.stderr
    assert (skip.json()["records"], skip.json()["bad_images"]) == (6, 1)
    assert skip.json()["skipped"][0]["key"] == "000010004"


def test_truncated_shard_is_refused_or_skipped_and_counted(cli, tmp_path):
    first, second = write_shards(tmp_path / "shards", per_shard=(4, 4))
    data = second.read_bytes()
    second.write_bytes(data[: len(data) // 2 + 100])  # cut mid-member
    stop = cli("data", "wds", tmp_path / "shards", "--out", tmp_path / "a")
    assert_clean_error(stop, "00001.tar", "truncated")
    skip = cli("data", "wds", tmp_path / "shards", "--out", tmp_path / "b", "--on-bad-image", "skip", "--json")
    assert skip.code == 0, skip.stderr
    s = skip.json()
    assert s["truncated_shards"] == 1 and 4 <= s["records"] < 8


def test_missing_shard_is_one_error_line(cli, tmp_path):
    assert_clean_error(cli("data", "wds", tmp_path / "nope.tar", "--out", tmp_path / "o"), "shard not found")
