"""Peak memory of `pcclip data coco` (streamed) against reading the same annotations with json.load.

    .venv/bin/python benchmarks/bench_coco_memory.py [--images 118287] [--quick] [--json]

Writes a synthetic captions_train2017.json of the release's shape (118,287 images, five captions each, every
field the release has: about 90 MB) and an empty file per image, then runs each arm in its own fresh process
and reads that process's peak resident set size (`ru_maxrss` of getrusage, the kernel's high-water mark):

- baseline: the interpreter plus the converter's imports, nothing read;
- json.load: the whole file parsed at once, then captions grouped by image (what a plain converter does);
- stream: `convert_coco`, every image, written to captions.jsonl;
- stream --images 1000: `convert_coco` keeping a seeded sample of 1000 images (the paper's COCO subset).

The ratios compare the memory above the baseline. Why it exists: the issue asked that the conversion of the
90 MB file stay bounded and that the bound be measured. The table goes to stderr, the ratios to stdout as JSON rows
(jsonrows.py).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonrows  # benchmarks/ is the script's own directory

ROOT = Path(__file__).resolve().parents[1]

ARMS = {
    "baseline": "import pcclip_cli.data.datasets.captions",
    "json.load": (
        "import json\n"
        "doc = json.load(open(ANN, encoding='utf-8'))\n"
        "files = {im['id']: im['file_name'] for im in doc['images']}\n"
        "caps = {}\n"
        "for a in doc['annotations']:\n"
        "    caps.setdefault(a['image_id'], []).append(' '.join(a['caption'].split()))\n"
    ),
    "stream": ("from pcclip_cli.data.datasets.captions import convert_coco\n"
               "convert_coco(ANN, IMAGES, OUT)\n"),
    "stream --images 1000": ("from pcclip_cli.data.datasets.captions import CaptionsOptions, convert_coco\n"
                             "convert_coco(ANN, IMAGES, OUT, CaptionsOptions(images=1000))\n"),
}


def write_annotations(root: Path, images: int) -> Path:
    rng = random.Random(0)
    words = ("a man woman dog cat bus train plate of food sitting on standing next to the table street field "
             "with red blue large small two people riding horse near water building kitchen").split()
    (root / "train2017").mkdir(parents=True)
    ann = root / "captions_train2017.json"
    with open(ann, "w", encoding="utf-8") as fh:
        fh.write('{"info": {"description": "COCO 2017 Dataset", "year": 2017}, "licenses": [')
        fh.write(", ".join(json.dumps({"url": "http://creativecommons.org/", "id": i, "name": "License"})
                           for i in range(1, 9)))
        fh.write('], "images": [')
        for i in range(images):
            name = f"{i + 1:012d}.jpg"
            (root / "train2017" / name).touch()
            fh.write(("" if i == 0 else ", ") + json.dumps({
                "license": 1 + i % 8, "file_name": name, "coco_url": f"http://images.cocodataset.org/train2017/{name}",
                "height": 480, "width": 640, "date_captured": "2013-11-14 11:18:45",
                "flickr_url": f"http://farm4.staticflickr.com/3153/{i}_{rng.getrandbits(40):x}_z.jpg", "id": i + 1}))
        fh.write('], "annotations": [')
        order = [i for i in range(images) for _ in range(5)]
        rng.shuffle(order)
        for k, i in enumerate(order):
            text = " ".join(rng.choice(words) for _ in range(rng.randrange(8, 14))).capitalize() + "."
            fh.write(("" if k == 0 else ", ") + json.dumps({"image_id": i + 1, "id": k + 1, "caption": text}))
        fh.write("]}")
    return ann


def peak_rss_mb(code: str, ann: Path, root: Path) -> float:
    prelude = (f"import resource, sys\nsys.path.insert(0, {str(ROOT)!r})\n"
               f"ANN, IMAGES, OUT = {str(ann)!r}, {str(root / 'train2017')!r}, {str(root / 'out.jsonl')!r}\n")
    coda = "\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    proc = subprocess.run([sys.executable, "-c", prelude + code + coda], capture_output=True, text=True, check=True)
    return int(proc.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=118287)
    ap.add_argument("--quick", action="store_true", help="20,000 images (about 15 MB)")
    ap.add_argument("--json", action="store_true", help="also print every measurement (on stderr)")
    args = ap.parse_args()
    jsonrows.people_to_stderr()
    images = 20000 if args.quick else args.images
    with tempfile.TemporaryDirectory(prefix="pcclip-coco-mem-") as tmp:
        root = Path(tmp)
        ann = write_annotations(root, images)
        size_mb = ann.stat().st_size / 2**20
        peaks = {arm: peak_rss_mb(code, ann, root) for arm, code in ARMS.items()}
    base = peaks["baseline"]
    above = {arm: peaks[arm] - base for arm in ARMS if arm != "baseline"}
    result = {
        "images": images, "annotations_mb": round(size_mb, 1),
        "peak_rss_mb": {k: round(v, 1) for k, v in peaks.items()},
        "above_baseline_mb": {k: round(v, 1) for k, v in above.items()},
        "ratios": [
            {"measure": "json.load / stream (memory above baseline)",
             "value": round(above["json.load"] / above["stream"], 2)},
            {"measure": "json.load / stream --images 1000 (memory above baseline)",
             "value": round(above["json.load"] / max(above["stream --images 1000"], 0.1), 2)},
        ],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    print(f"annotations: {images} images, {size_mb:.1f} MB")
    for arm, mb in peaks.items():
        extra = "" if arm == "baseline" else f"  ({above[arm]:.1f} MB above baseline)"
        print(f"{arm:>22}: peak RSS {mb:7.1f} MB{extra}")
    for r in result["ratios"]:
        print(f"{r['measure']}: {r['value']}x")
        jsonrows.emit("coco_memory", r["measure"], r["value"],
                      detail=f"{images:,} images, {size_mb:.1f} MB of annotations")

if __name__ == "__main__":
    main()
