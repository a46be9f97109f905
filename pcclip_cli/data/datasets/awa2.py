"""Animals with Attributes 2 as released: Animals_with_Attributes2/ with classes.txt and predicates.txt
(`<number>\t<name>` lines), predicate-matrix-binary.txt (one row of 0/1 per class, one column per predicate)
and JPEGImages/<class>/<class>_NNNNN.jpg. Each image carries its class's predicates as attribute `predicates`."""

from __future__ import annotations

from pathlib import Path

from pcclip_cli.core.errors import DataError

from .base import Dataset, LabeledImage, missing, read_table

BITS = {"0": False, "1": True, "0.0": False, "1.0": True}


def load_awa2(root: Path) -> Dataset:
    base = root / "Animals_with_Attributes2"
    classes = [row[1] for row in read_table(base / "classes.txt", "awa2", root)]
    predicates = [row[1] for row in read_table(base / "predicates.txt", "awa2", root)]
    matrix_path = base / "predicate-matrix-binary.txt"
    matrix = read_table(matrix_path, "awa2", root, columns=0)
    if len(matrix) != len(classes) or any(len(row) != len(predicates) for row in matrix) or \
            any(bit not in BITS for row in matrix for bit in row):
        raise DataError(f"{matrix_path} is not a {len(classes)} x {len(predicates)} matrix of 0 and 1 "
                        "(one row per line of classes.txt, one column per line of predicates.txt)")
    items = []
    for cls, row in zip(classes, matrix, strict=True):
        folder = base / "JPEGImages" / cls
        if not folder.is_dir():
            raise missing("awa2", root, folder)
        have = [p for p, bit in zip(predicates, row, strict=True) if BITS[bit]]
        for img in sorted(folder.glob("*.jpg")):
            items.append(LabeledImage(img.resolve(), img.stem, cls, None, {"predicates": have}))
    return Dataset("awa2", "awa2", items, classes)
