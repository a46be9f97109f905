"""`distance`: how well class-prompt differences line up with embedded difference texts (paper §4.4, Table 6)."""

from __future__ import annotations

from pathlib import Path

from pcclip_cli.core.errors import PcclipError
from pcclip_cli.data.datasets.base import display_name, load_dataset

from .class_images import ClassNames
from .classification import DEFAULT_TEMPLATE, read_class_records


def distances_for(clip, records: list[dict], template: str = DEFAULT_TEMPLATE) -> dict:
    """Per record (first=A, second=B, text = how A differs from B): comparison d(f_A - f_B, f_{A-B}), lower is
    better, and reverse d(f_B - f_A, f_{A-B}), higher is better; f_X embeds template.format(X)."""
    from .formulas import comparison_distances, mean_se

    if template.count("{}") != 1:
        raise PcclipError(f"--template must contain one {{}} for the class name, got {template!r}")
    if not records:
        raise PcclipError("no comparatives to measure")
    classes = sorted({r[k] for r in records for k in ("first", "second")})
    class_emb = dict(zip(classes, clip.encode_texts([template.format(display_name(c)) for c in classes]),
                         strict=True))
    text_emb = clip.encode_texts([r["text"] for r in records])
    pairs = []
    for r, t in zip(records, text_emb, strict=True):
        comparison, reverse = comparison_distances(class_emb[r["first"]], class_emb[r["second"]], t)
        pairs.append({"first": r["first"], "second": r["second"], "text": r["text"], "comparison": comparison,
                      "reverse": reverse})
    cmp_mean, cmp_se = mean_se([p["comparison"] for p in pairs])
    rev_mean, rev_se = mean_se([p["reverse"] for p in pairs])
    return {
        "model": clip.spec,
        "fingerprint": clip.fingerprint,
        "template": template,
        "pairs": pairs,
        "mean": {"comparison": cmp_mean, "reverse": rev_mean},
        "se": {"comparison": cmp_se, "reverse": rev_se},
        "n": len(pairs),
    }


def distance(model, comparatives: str | Path, *, template: str = DEFAULT_TEMPLATE, dataset: str | None = None,
             data_root: str | Path | None = None, device: str | None = None) -> dict:
    """distances_for over a class comparatives JSONL; with `dataset`, every class it names must be in it."""
    names = None
    if dataset:
        ds = load_dataset(dataset, data_root)
        names = ClassNames(ds.classes, ds.source)
    records = read_class_records(comparatives, "classes", names)
    if template.count("{}") != 1:
        raise PcclipError(f"--template must contain one {{}} for the class name, got {template!r}")
    from pcclip_cli.models import clip_for

    out = distances_for(clip_for(model, device), records, template)
    out["comparatives"] = str(comparatives)
    if dataset:
        out["dataset"] = str(dataset)
    return out
