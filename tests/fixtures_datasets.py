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


# ---------------------------------------------------------------------------------------------------------------
# CIFAR-100, python version: cifar-100-python/{train, test, meta}, pickled by Python 2 (protocol 2, byte strings)


CIFAR100_FINE = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm").split()
CIFAR100_COARSE = (
    "aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices "
    "household_furniture insects large_carnivores large_man-made_outdoor_things large_natural_outdoor_scenes "
    "large_omnivores_and_herbivores medium_mammals non-insect_invertebrates people reptiles small_mammals trees "
    "vehicles_1 vehicles_2").split()
# The superclass of the fine classes the fixture draws from (CIFAR-100's published grouping).
CIFAR100_USED = {
    "bear": "large_carnivores", "leopard": "large_carnivores", "lion": "large_carnivores", "tiger": "large_carnivores",
    "wolf": "large_carnivores", "camel": "large_omnivores_and_herbivores", "cattle": "large_omnivores_and_herbivores",
    "elephant": "large_omnivores_and_herbivores", "hamster": "small_mammals", "mouse": "small_mammals",
    "rabbit": "small_mammals", "squirrel": "small_mammals", "rose": "flowers", "tulip": "flowers",
    "bus": "vehicles_1",
}


def py2_pickle(obj, path: Path) -> None:
    """Pickle `obj` as Python 2's cPickle wrote the CIFAR files: protocol 2, every str (and every byte string,
    the pixel data included) as a byte-string opcode, numpy globals under numpy.core.multiarray."""
    import io
    import pickle
    import struct

    class Py2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_string(self, obj):
            data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
            if len(data) < 256:
                self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
            else:
                self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
            self.memoize(obj)

        def save_global(self, obj, name=None):
            module = obj.__module__.replace("numpy._core", "numpy.core")
            self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
            self.memoize(obj)

        dispatch[str] = save_string
        dispatch[bytes] = save_string
        dispatch[type] = save_global

    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def cifar100(root: Path, train: int = 30, test: int = 45) -> Path:
    import numpy as np

    names = list(CIFAR100_USED)
    base = root / "cifar-100-python"
    for split, n, offset in (("train", train, 0), ("test", test, 10000)):
        fine = [CIFAR100_FINE.index(names[k % len(names)]) for k in range(n)]
        coarse = [CIFAR100_COARSE.index(CIFAR100_USED[CIFAR100_FINE[f]]) for f in fine]
        # Each row: 1024 red, then 1024 green, then 1024 blue values, each plane row by row.
        data = np.stack([np.asarray(picture(offset + k)).transpose(2, 0, 1).reshape(-1) for k in range(n)])
        py2_pickle({"filenames": [f"{CIFAR100_FINE[f]}_s_{offset + k:06d}.png" for k, f in enumerate(fine)],
                    "batch_label": f"{'training' if split == 'train' else 'testing'} batch 1 of 1",
                    "fine_labels": fine, "coarse_labels": coarse, "data": data.astype(np.uint8)}, base / split)
    py2_pickle({"fine_label_names": CIFAR100_FINE, "coarse_label_names": CIFAR100_COARSE}, base / "meta")
    return root


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10(root: Path, per_batch: int = 4) -> Path:
    """cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}: `data`, `labels`, `filenames`, `batch_label`."""
    import numpy as np

    base = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        seeds = [20000 + 100 * b + k for k in range(per_batch)]
        data = np.stack([np.asarray(picture(s)).transpose(2, 0, 1).reshape(-1) for s in seeds]).astype(np.uint8)
        py2_pickle({"batch_label": f"{'testing' if name == 'test_batch' else 'training'} batch {b + 1} of 5",
                    "labels": [(b + k) % 10 for k in range(per_batch)], "data": data,
                    "filenames": [f"img_{s}.png" for s in seeds]}, base / name)
    py2_pickle({"num_cases_per_batch": per_batch, "label_names": CIFAR10_NAMES, "num_vis": 3072},
               base / "batches.meta")
    return root


# ---------------------------------------------------------------------------------------------------------------
# Flowers102: flowers-102/{jpg/image_NNNNN.jpg, imagelabels.mat, setid.mat}


FLOWERS_USED = ["yellow iris", "daffodil", "sunflower", "buttercup", "bolero deep blue", "canterbury bells",
                "pink primrose", "rose"]


def flowers102(root: Path, per_class: int = 6) -> Path:
    """imagelabels.mat holds `labels` (1 x N, 1-based classes) and setid.mat `trnid`, `valid`, `tstid` (1 x n image
    numbers), integer arrays as torchvision's reader expects (it formats the numbers with %05d)."""
    import numpy as np
    from scipy.io import savemat
    from torchvision.datasets import Flowers102

    base = root / "flowers-102"
    labels, splits = [], {"trnid": [], "valid": [], "tstid": []}
    image_no = 0
    for name in FLOWERS_USED:
        for k in range(per_class):
            image_no += 1
            save_jpg(base / "jpg" / f"image_{image_no:05d}.jpg", 500 + image_no, size=48)
            labels.append(Flowers102.classes.index(name) + 1)
            splits["trnid" if k == 0 else "valid" if k == 1 else "tstid"].append(image_no)
    savemat(base / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(base / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in splits.items()})
    return root


# ---------------------------------------------------------------------------------------------------------------
# EuroSAT (RGB): eurosat/2750/<class>/<class>_<n>.jpg, 64 x 64


EUROSAT_CLASSES = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake"]


def eurosat(root: Path, per_class: int = 3) -> Path:
    for c, cls in enumerate(EUROSAT_CLASSES):
        for k in range(1, per_class + 1):
            save_jpg(root / "eurosat" / "2750" / cls / f"{cls}_{k}.jpg", 700 + 10 * c + k, size=64)
    return root


# ---------------------------------------------------------------------------------------------------------------
# SUN397: SUN397/{ClassName.txt, README.txt, <letter>/<class>[/<sub>]/sun_<16 letters>.jpg}


SUN_CLASSES = ["/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop", "/k/kitchen", "/k/kitchenette"]


def sun397(root: Path, per_class: int = 4) -> Path:
    rng = random.Random(9)
    base = root / "SUN397"
    for c, cls in enumerate(SUN_CLASSES):
        for k in range(per_class):
            name = "sun_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(16)) + ".jpg"
            save_jpg(base / cls.lstrip("/") / name, 900 + 10 * c + k, size=48)
    (base / "ClassName.txt").write_text("".join(c + "\n" for c in SUN_CLASSES), encoding="utf-8")
    (base / "README.txt").write_text("SUN397 (fixture)\n", encoding="utf-8")
    return root


# ---------------------------------------------------------------------------------------------------------------
# AwA2: Animals_with_Attributes2/{classes.txt, predicates.txt, predicate-matrix-binary.txt, JPEGImages/<class>/}


AWA2_CLASSES = ["antelope", "grizzly+bear", "killer+whale", "dalmatian", "polar+bear"]
AWA2_PREDICATES = ["black", "white", "blue", "brown", "furry", "longleg", "flippers", "smelly", "fish", "swims"]
AWA2_MATRIX = ["0 1 0 1 1 1 0 0 0 0", "0 0 0 1 1 0 0 1 1 1", "1 1 0 0 0 0 1 1 1 1", "1 1 0 0 1 1 0 0 0 0",
               "0 1 0 0 1 0 0 1 1 1"]


def awa2(root: Path, per_class: int = 4) -> Path:
    base = root / "Animals_with_Attributes2"
    base.mkdir(parents=True, exist_ok=True)
    (base / "classes.txt").write_text("".join(f"{i}\t{c}\n" for i, c in enumerate(AWA2_CLASSES, start=1)))
    (base / "predicates.txt").write_text("".join(f"{i}\t{p}\n" for i, p in enumerate(AWA2_PREDICATES, start=1)))
    (base / "predicate-matrix-binary.txt").write_text("\n".join(AWA2_MATRIX) + "\n")
    (base / "trainclasses.txt").write_text("".join(c + "\n" for c in AWA2_CLASSES[:3]))
    (base / "testclasses.txt").write_text("".join(c + "\n" for c in AWA2_CLASSES[3:]))
    for c, cls in enumerate(AWA2_CLASSES):
        for k in range(per_class):
            save_jpg(base / "JPEGImages" / cls / f"{cls}_{10001 + k}.jpg", 1100 + 10 * c + k, size=48)
    return root
