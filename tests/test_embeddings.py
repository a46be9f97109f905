"""The image-embedding cache: computed once, invalidated by image changes, keyed by image tower."""

import os
import shutil

import numpy as np
import pytest

from pcclip_cli.clip.embeddings import embed_images
from pcclip_cli.core.errors import DataError
from pcclip_cli.data.records import OnError, collect_images, read_captions


@pytest.fixture
def images(world, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for rec in read_captions(world / "captions.jsonl")[:6]:
        shutil.copy(rec.path, folder / rec.path.name)
    return sorted(folder.iterdir())


def test_cache_reuses_and_matches_direct_computation(micro_clip, images):
    first = embed_images(micro_clip, images)
    assert first.computed == 6 and first.vectors.shape == (6, 64)
    second = embed_images(micro_clip, images)
    assert second.computed == 0
    assert np.array_equal(first.vectors, second.vectors)
    from PIL import Image

    direct = micro_clip.encode_image_batch([Image.open(p).convert("RGB") for p in images])
    assert np.allclose(direct, first.vectors, atol=1e-5)


def test_changed_image_is_re_embedded(micro_clip, images):
    embed_images(micro_clip, images)
    shutil.copy(images[1], images[0])
    os.utime(images[0], ns=(1, 1))  # a new mtime, as a real edit would give
    again = embed_images(micro_clip, images)
    assert again.computed == 1
    assert np.allclose(again.vectors[0], again.vectors[1], atol=1e-5)


def test_different_model_does_not_share_vectors(micro_clip, images):
    from pcclip_cli.models import load_clip

    tiny = load_clip("pcclip-tiny", "cpu")
    embed_images(micro_clip, images)
    other = embed_images(tiny, images)
    assert other.computed == 6 and other.vectors.shape[1] == 128


def test_bad_images_stop_or_skip(micro_clip, images, tmp_path):
    bad = tmp_path / "imgs" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="unreadable image .*broken.png"):
        embed_images(micro_clip, images + [bad])
    warned = []
    res = embed_images(micro_clip, images + [bad, tmp_path / "missing.png"], on_error=OnError.skip,
                       warn=warned.append)
    assert res.vectors.shape[0] == 6 and len(res.skipped) == 2 and len(warned) == 2
    assert bad not in res.paths


def test_collect_images_from_folder_manifest_and_errors(world, tmp_path):
    items = collect_images([world / "images"])
    assert len(items) == 60
    manifest = collect_images([world / "classes" / "shape.jsonl"])
    assert all(it.path.exists() and "label" in it.meta for it in manifest)
    with pytest.raises(DataError, match="not found"):
        collect_images([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        collect_images([tmp_path / "empty"])


def test_malformed_captions_line_is_named(tmp_path):
    p = tmp_path / "captions.jsonl"
    p.write_text('{"image": "a.png", "caption": "x"}\n{"image": "b.png", "caption": \n')
    with pytest.raises(DataError, match=r"captions.jsonl:2: malformed JSON"):
        read_captions(p)
    p.write_bytes(b'{"image": "a.png", "caption": "\xff"}\n')
    with pytest.raises(DataError, match=r":1: not valid UTF-8"):
        read_captions(p)
