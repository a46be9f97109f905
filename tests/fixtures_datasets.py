"""Builders of small copies of the paper's datasets in their released on-disk formats (names, index files, .mat
and pickle files as the releases write them), filled with generated images. Nothing here is committed data."""

from __future__ import annotations

import json
import random
from pathlib import Path

COLOURS = [(220, 40, 40), (40, 160, 60), (40, 70, 220), (230, 200, 30), (150, 60, 190), (240, 140, 20)]


def picture(seed: int, size: int = 32):
    """A small RGB image: a coloured rectangle on a background, different for each seed."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randrange(40, 200) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    x0, y0 = rng.randrange(0, size // 2), rng.randrange(0, size // 2)
    draw.rectangle([x0, y0, x0 + rng.randrange(4, size // 2), y0 + rng.randrange(4, size // 2)],
                   fill=COLOURS[seed % len(COLOURS)])
    return img


def save_jpg(path: Path, seed: int, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture(seed, size).save(path, format="JPEG", quality=90)
    return path


CAPTION_WORDS = {
    "subject": ["a man", "a woman", "a dog", "two cats", "a red bus", "a small boat", "a child", "a horse"],
    "action": ["standing next to", "sitting on", "walking past", "looking at", "parked beside", "running along"],
    "place": ["a wooden bench", "a busy street", "the beach", "a green field", "a kitchen table", "a lake"],
}


def caption(rng: random.Random) -> str:
    return " ".join(rng.choice(CAPTION_WORDS[k]) for k in ("subject", "action", "place")).capitalize() + "."


# ---------------------------------------------------------------------------------------------------------------
# COCO: annotations/captions_<split>2017.json beside <split>2017/<12-digit id>.jpg


def coco(root: Path, images: int = 12, captions_per_image: int = 5, split: str = "train2017", seed: int = 0) -> dict:
    """COCO 2017 captions layout: {info, licenses, images, annotations} with every field the release has."""
    rng = random.Random(seed)
    ids = sorted(rng.sample(range(1, 600000), images))
    image_entries, annotations = [], []
    for k, iid in enumerate(ids):
        name = f"{iid:012d}.jpg"
        save_jpg(root / split / name, seed * 1000 + k, size=40)
        image_entries.append({"license": 1 + k % 8, "file_name": name,
                              "coco_url": f"http://images.cocodataset.org/{split}/{name}", "height": 40, "width": 40,
                              "date_captured": "2013-11-14 11:18:45",
                              "flickr_url": f"http://farm4.staticflickr.com/{iid}.jpg", "id": iid})
    ann_id = 1
    for _ in range(captions_per_image):
        for iid in ids:
            # Released captions carry stray spaces and newlines; the converter normalises them.
            annotations.append({"image_id": iid, "id": ann_id, "caption": caption(rng) + rng.choice(["", " ", "\n"])})
            ann_id += rng.randrange(1, 30)
    rng.shuffle(annotations)  # the release does not group annotations by image
    doc = {"info": {"description": "COCO 2017 Dataset", "url": "http://cocodataset.org", "version": "1.0",
                    "year": 2017, "contributor": "COCO Consortium", "date_created": "2017/09/01"},
           "licenses": [{"url": f"http://creativecommons.org/licenses/{i}/", "id": i, "name": f"License {i}"}
                        for i in range(1, 9)],
           "images": image_entries, "annotations": annotations}
    path = root / "annotations" / f"captions_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return {"annotations": path, "images": root / split, "ids": ids, "doc": doc}


# ---------------------------------------------------------------------------------------------------------------
# CUB-200-2011 (+ Reed et al. captions): CUB_200_2011/{images.txt, image_class_labels.txt, classes.txt,
# train_test_split.txt, bounding_boxes.txt, images/<class>/<name>.jpg}; text_c10/<class>/<name>.txt


CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross", "004.Groove_billed_Ani"]
BIRD_WORDS = ["a small bird with a white belly and grey wings", "this bird has a long black bill and brown crown",
              "a bird with bright yellow breast and short beak", "this is a dark bird with webbed feet and long wings",
              "the bird has a red eyering and a curved bill", "a large seabird with a pale head and dark back"]


def cub(root: Path, per_class: int = 4, classes: list[str] | None = None, with_text: bool = True) -> Path:
    """CUB_200_2011 as CUB_200_2011.tgz unpacks (ids 1..N in class order, every other image a training image) and,
    with_text, Reed et al.'s text_c10 folder beside it (ten captions per image)."""
    classes = classes or CUB_CLASSES
    base = root / "CUB_200_2011"
    lines = {"images": [], "labels": [], "split": [], "boxes": []}
    iid = 0
    rng = random.Random(5)
    for c, cls in enumerate(classes, start=1):
        species = cls.split(".", 1)[1]
        for k in range(per_class):
            iid += 1
            rel = f"{cls}/{species}_{k + 1:04d}_{100000 + iid}.jpg"
            save_jpg(base / "images" / rel, iid)
            lines["images"].append(f"{iid} {rel}")
            lines["labels"].append(f"{iid} {c}")
            lines["split"].append(f"{iid} {1 if k % 2 == 0 else 0}")
            lines["boxes"].append(f"{iid} 2.0 3.0 20.0 24.0")
            if with_text:
                text = root / "text_c10" / Path(rel).with_suffix(".txt")
                text.parent.mkdir(parents=True, exist_ok=True)
                text.write_text("".join(rng.choice(BIRD_WORDS) + "\n" for _ in range(10)), encoding="utf-8")
    for name, key in (("images.txt", "images"), ("image_class_labels.txt", "labels"),
                      ("train_test_split.txt", "split"), ("bounding_boxes.txt", "boxes")):
        (base / name).write_text("\n".join(lines[key]) + "\n", encoding="utf-8")
    (base / "classes.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, start=1)), encoding="utf-8")
    return root
