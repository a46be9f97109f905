"""`classify`: zero-shot accuracy, confused pairs, comparative prompting (Eq. 3), class descriptions, EX2 selection."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError, short_list
from pcclip_cli.data.comparatives import RecordKind, read_comparatives
from pcclip_cli.data.datasets.base import Dataset, display_name, load_dataset

from .class_images import ClassNames, embed_items, labelled, mean_rows
from .linear_probe import plan_probe, run_probe

DEFAULT_TEMPLATE = "This is a photo of a {}."
TOP_KS = (1, 3, 5)


class DescriptionMode(str, enum.Enum):
    """How `--descriptions` meet the template: replace it (App. C.3) or be averaged with it."""

    replace = "replace"
    combine = "combine"


@dataclass
class ClassifyOptions:
    template: str = DEFAULT_TEMPLATE  # "{}" is replaced by the class name
    split: str | None = None  # evaluation split; default "test" when the dataset has one, else every image
    top_k: int = 3  # how many confused class pairs to name (and to compare with --comparative auto)
    comparative: str | None = None  # a class comparatives JSONL, or "auto"
    llm: str | None = None  # the LLM for --comparative auto
    alpha: float = 0.9  # Eq. 3 weight of the original class prompt
    descriptions: str | None = None  # JSONL of kind "descriptions" records
    description_mode: DescriptionMode = DescriptionMode.replace
    select_descriptions: int | None = None  # keep the K descriptions per class that its images prefer (EX2)
    score_split: str = "train"  # where descriptions are scored: never the evaluation split
    confused_out: str | None = None  # write the top-k confused pairs here (read by `generate --kind classes`)
    save_comparatives: str | None = None  # with auto: keep the generated comparatives
    linear_probe: bool = False  # also fit a logistic-regression probe on frozen image embeddings
    probe_split: str = "train"  # the probe learns from this split; a seeded part of it chooses C
    probe_val_fraction: float = 0.25  # share of each class's probe_split images that chooses C
    probe_seed: int = 0
    label: str | None = None  # the manifest attribute that is the class (a world directory: colour_shape)

    def __post_init__(self):
        if self.template.count("{}") != 1:
            raise PcclipError(f"--template must contain one {{}} for the class name, got {self.template!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise PcclipError(f"--alpha must be in [0, 1], got {self.alpha}")
        if self.top_k < 1:
            raise PcclipError(f"--top-k must be at least 1, got {self.top_k}")
        if self.comparative and self.comparative != "auto" and not Path(self.comparative).exists():
            import difflib

            near = " (did you mean 'auto'?)" if difflib.get_close_matches(self.comparative, ["auto"], cutoff=0.5) else ""
            raise PcclipError(f"--comparative {self.comparative!r}: no such file{near}; give a class comparatives "
                              "JSONL or 'auto'")
        if self.comparative == "auto" and not self.llm:
            raise PcclipError("--comparative auto needs --llm NAME (for example --llm template on the shapes world)")
        if self.llm and self.comparative != "auto":
            raise PcclipError("--llm is only used with --comparative auto")
        if self.save_comparatives and self.comparative != "auto":
            raise PcclipError("--save-comparatives keeps what --comparative auto generates; use it with auto")
        if self.select_descriptions is not None:
            if self.select_descriptions < 1:
                raise PcclipError(f"--select-descriptions must be at least 1, got {self.select_descriptions}")
            if not self.descriptions:
                raise PcclipError("--select-descriptions K picks among --descriptions FILE; give the file too")
        if self.split is not None and self.split == self.score_split and self.select_descriptions:
            raise PcclipError(f"--score-split {self.score_split} is also the evaluation split; scoring descriptions "
                              "on the images they are evaluated on leaks labels; choose another split")
        if not 0.0 < self.probe_val_fraction < 1.0:
            raise PcclipError(f"--probe-val-fraction must be between 0 and 1, got {self.probe_val_fraction}")
        if self.linear_probe and self.split is not None and self.split == self.probe_split:
            raise PcclipError(f"--probe-split {self.probe_split} is also the evaluation split; the probe would be "
                              "tested on the images it learnt from; choose another split")


def read_class_records(path: str | Path, kind: str, names: ClassNames | None = None) -> list[dict]:
    """Records of `kind` ("classes" comparatives or "descriptions") with first/second/text checked; class names
    are mapped to the dataset's labels when `names` is given (an unknown class is an error)."""
    path = Path(path)
    records = []
    no_text = 0
    for rec in read_comparatives(path, kinds=(RecordKind(kind),), other_kinds="error", what=f"{kind} file"):
        where = f"{path}:{rec.line}"
        if not rec.text:
            no_text += 1  # the one rule of every command: a record without text is dropped and counted
            continue
        out = {"first": rec.first, "text": rec.text, "line": rec.line}
        if rec.second is not None:
            out["second"] = rec.second
        if names is not None:
            out["first"] = names.resolve(out["first"], where)
            if "second" in out:
                out["second"] = names.resolve(out["second"], where)
        if out.get("second") is not None and out["first"] == out["second"]:
            raise DataError(f"{where}: compares class {out['first']!r} with itself")
        records.append(out)
    if not records:
        raise DataError(f"{kind} file {path} has no records" + (
            f" with a \"text\" ({no_text} without one)" if no_text else ""))
    if no_text:
        from pcclip_cli.core.notices import notify

        notify(f"warning: {path}: dropped {no_text} records without \"text\"")
    return records


def template_embeddings(clip, classes: list[str], template: str):
    return clip.encode_texts([template.format(display_name(c)) for c in classes])


def _scores(true, pred, names: ClassNames, cm, top_k: int) -> dict:
    from .formulas import accuracy, most_confused

    per_class = {}
    for i, c in enumerate(names.classes):
        total = int(cm[i].sum())
        per_class[c] = {"accuracy": (float(cm[i, i]) / total) if total else None, "images": total}
    confused = [{"first": names.classes[a], "second": names.classes[b], "confusions": n,
                 "first_as_second": int(cm[a, b]), "second_as_first": int(cm[b, a])}
                for a, b, n in most_confused(cm, top_k)]
    return {"accuracy": accuracy(true, pred), "per_class": per_class, "top_confused": confused}


def classify(model, dataset: str | Path | Dataset, options: ClassifyOptions | None = None, *,
             data_root: str | Path | None = None, device: str | None = None, progress=None, warn=None) -> dict:
    """Zero-shot classification of a labelled dataset, with the optional comparative prompting, descriptions and
    description selection of the paper's §3.4 / App. C and EX2. Returns every number in one dict.

    `model` is a SPEC or a LoadedClip; the dataset and every input file are checked before it is loaded (on
    `device`, None: auto; the LLM of `comparative="auto"` loads there too).
    """
    import numpy as np

    from pcclip_cli.models import clip_for

    from .formulas import accuracy, apply_comparatives, confusion_matrix, predict

    opts = options or ClassifyOptions()
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_root, opts.label)
    names = ClassNames(ds.classes, ds.source)
    if len(names.classes) < 2:
        raise DataError(f"dataset {ds.source} has {len(names.classes)} class(es) "
                        f"({short_list(names.classes) or 'no labels'}); classification needs at least two")
    split = opts.split if opts.split is not None else ("test" if "test" in ds.splits else None)
    eval_items = labelled(ds.in_split(split), names)
    if not eval_items:
        raise DataError(f"dataset {ds.source} has no labelled images in split {split!r}")
    if opts.select_descriptions and split == opts.score_split:
        raise PcclipError(f"--score-split {opts.score_split} is the evaluation split; choose another split")
    if opts.select_descriptions and opts.score_split not in ds.splits:
        have = ", ".join(ds.splits) or "none"
        raise DataError(f"--select-descriptions scores on a held-out split, but dataset {ds.source} has no split "
                        f"{opts.score_split!r} (its splits: {have}); pass --score-split")
    desc = read_class_records(opts.descriptions, "descriptions", names) if opts.descriptions else None
    file_records = (read_class_records(opts.comparative, "classes", names)
                    if opts.comparative and opts.comparative != "auto" else None)
    probe_plan = (plan_probe(ds, names, split, opts.probe_split, opts.probe_val_fraction, opts.probe_seed)
                  if opts.linear_probe else None)
    clip = clip_for(model, device)
    images = embed_items(clip, ds, eval_items, progress, warn)
    true = np.array([names.index[it.label] for it in eval_items])

    template_emb = template_embeddings(clip, names.classes, opts.template)
    result: dict = {"dataset": ds.source, "model": clip.spec, "fingerprint": clip.fingerprint,
                    "split": split, "images": len(eval_items), "classes": names.classes,
                    "template": opts.template}
    base, prompt_kind = template_emb, "template"
    if desc is not None:
        grouped = _grouped_descriptions(clip, names, desc)
        base, described = _description_classifier(names, grouped, template_emb, opts.description_mode, warn)
        prompt_kind = f"descriptions ({opts.description_mode.value})"
        result["descriptions"] = {"file": str(opts.descriptions), "mode": opts.description_mode.value,
                                  "records": len(desc), "classes_described": described,
                                  "template_accuracy": accuracy(true, predict(images, template_emb)),
                                  "accuracy": accuracy(true, predict(images, base))}
        if opts.select_descriptions:
            selected, report = _select_descriptions(clip, ds, names, grouped, opts, split, progress, warn)
            report["template_accuracy"] = result["descriptions"]["template_accuracy"]
            report["all_descriptions_accuracy"] = accuracy(true, predict(images, _replace_or_combine(
                selected["all"], template_emb, opts.description_mode)))
            chosen = _replace_or_combine(selected["chosen"], template_emb, opts.description_mode)
            report["selected_accuracy"] = accuracy(true, predict(images, chosen))
            report["gain_over_template"] = report["selected_accuracy"] - report["template_accuracy"]
            result["selection"] = report
            base, prompt_kind = chosen, f"top-{opts.select_descriptions} selected descriptions"
    pred = predict(images, base)
    cm = confusion_matrix(true, pred, len(names.classes))
    result["prompts"] = prompt_kind
    result["zero_shot"] = {**_scores(true, pred, names, cm, opts.top_k), "confusion": cm.tolist(),
                           "topk": zero_shot_topk(images, base, true)}
    if probe_plan is not None:
        result["linear_probe"] = run_probe(clip, ds, probe_plan, eval_items, images, progress=progress, warn=warn)
    if opts.confused_out:
        _write_confused(opts.confused_out, result["zero_shot"]["top_confused"], ds.source, clip.spec)
        result["confused_file"] = str(opts.confused_out)
    if opts.comparative == "auto" and not result["zero_shot"]["top_confused"]:
        # Nothing to compare is a result (a model that confuses no classes), not an input error.
        reason = ("nothing to act on: the model confuses no class pair here (comparative prompting helps on a "
                  "world where classes are confused)")
        result["comparative"] = {"source": f"auto ({opts.llm})", "alpha": opts.alpha, "skipped": reason,
                                 "records": []}
    elif opts.comparative:
        if opts.comparative == "auto":
            records = generate_comparatives(opts.llm, result["zero_shot"]["top_confused"], names, device=device,
                                            warn=warn)
            if opts.save_comparatives:
                from pcclip_cli.core.io import write_jsonl_atomic

                write_jsonl_atomic(opts.save_comparatives, [{k: v for k, v in r.items() if k != "line"}
                                                            for r in records])
            source = f"auto ({opts.llm})"
        else:
            records = file_records
            source = str(opts.comparative)
        text_emb = clip.encode_texts([r["text"] for r in records])
        # A record (first=B, second=A) says how B differs from A: it updates A's prompt (Eq. 3).
        updates = [(names.index[r["second"]], names.index[r["first"]], t) for r, t in zip(records, text_emb,
                                                                                            strict=True)]
        after = apply_comparatives(base, updates, opts.alpha)
        pred_after = predict(images, after)
        touched = sorted({names.index[r[k]] for r in records for k in ("first", "second")})
        updated = sorted({a for a, _, _ in updates})
        cm_after = confusion_matrix(true, pred_after, len(names.classes))
        result["comparative"] = {
            "source": source,
            "alpha": opts.alpha,
            "records": [{"first": r["first"], "second": r["second"], "text": r["text"]} for r in records],
            "touched": [names.classes[i] for i in touched],
            "updated": [names.classes[i] for i in updated],
            "touched_images": int(np.isin(true, touched).sum()),
            "before": {"accuracy": accuracy(true, pred), "touched_accuracy": accuracy(true, pred, touched)},
            "after": {"accuracy": accuracy(true, pred_after), "touched_accuracy": accuracy(true, pred_after, touched)},
            "per_class_after": {names.classes[i]: _class_acc(cm_after, i) for i in touched},
            "per_class_before": {names.classes[i]: _class_acc(cm, i) for i in touched},
        }
        before, after_acc = result["comparative"]["before"], result["comparative"]["after"]
        result["comparative"]["gain"] = after_acc["accuracy"] - before["accuracy"]
        if before["touched_accuracy"] is not None:
            result["comparative"]["touched_gain"] = after_acc["touched_accuracy"] - before["touched_accuracy"]
        result["comparative"]["paired"] = paired_change(pred == true, pred_after == true, np.isin(true, touched))
    return result


def paired_change(before_right, after_right, touched) -> dict:
    """Images the change fixed and broke, and the standard error of the accuracy gain over images (paired: the
    same images before and after), on all images and on the touched classes' images."""
    import numpy as np

    def one(mask) -> dict:
        d = after_right[mask].astype(float) - before_right[mask].astype(float)
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None
        return {"images": int(mask.sum()), "fixed": int((d > 0).sum()), "broken": int((d < 0).sum()),
                "gain_se": se}

    return {"all": one(np.ones_like(touched, dtype=bool)), "touched": one(touched)}


def zero_shot_topk(images, class_emb, true, ks=TOP_KS) -> dict:
    """Top-k accuracy of the zero-shot logits (image embeddings . class prompt embeddings); k at or above the
    number of classes is 1.0 by definition. Top-1 equals `predict`'s accuracy (same float64 logits, first
    maximum wins on ties)."""
    import numpy as np

    from .metrics import topk_accuracy

    logits = np.asarray(images, np.float64) @ np.asarray(class_emb, np.float64).T
    return topk_accuracy(logits, true, ks)


def _class_acc(cm, i: int) -> float | None:
    total = int(cm[i].sum())
    return float(cm[i, i]) / total if total else None


def _replace_or_combine(desc_emb: dict, template_emb, mode: DescriptionMode):
    from .formulas import normalise

    out = template_emb.astype("float64").copy()
    for i, emb in desc_emb.items():
        out[i] = emb if mode == DescriptionMode.replace else normalise(emb + template_emb[i])
    return out


def _grouped_descriptions(clip, names: ClassNames, records: list[dict]) -> dict[int, tuple[list[str], object]]:
    """Class index -> (its description texts, their embeddings), all encoded in one batch."""
    by_class: dict[int, list[str]] = {}
    for r in records:
        by_class.setdefault(names.index[r["first"]], []).append(r["text"])
    emb = clip.encode_texts([t for texts in by_class.values() for t in texts])
    out, start = {}, 0
    for i, texts in by_class.items():
        out[i] = (texts, emb[start : start + len(texts)])
        start += len(texts)
    return out


def _description_classifier(names: ClassNames, grouped: dict, template_emb, mode, warn):
    missing = [c for i, c in enumerate(names.classes) if i not in grouped]
    if missing and warn:
        warn(f"{len(missing)} class(es) have no description and keep the template: {short_list(missing, 5)}")
    emb = {i: mean_rows(e) for i, (_, e) in grouped.items()}
    return _replace_or_combine(emb, template_emb, mode), len(grouped)


def _select_descriptions(clip, ds: Dataset, names: ClassNames, grouped: dict, opts: ClassifyOptions,
                         eval_split, progress, warn):
    """EX2-style preference: a description's reward is its mean cosine similarity to its class's images in the
    held-out score split; the top K per class are kept."""
    import numpy as np

    score_items = labelled(ds.in_split(opts.score_split), names)
    vectors = embed_items(clip, ds, score_items, progress, warn)
    labels = np.array([names.index[it.label] for it in score_items])
    chosen, every, report_classes = {}, {}, {}
    unscored = []
    for i, (texts, emb) in sorted(grouped.items()):
        every[i] = mean_rows(emb)
        mine = vectors[labels == i]
        if len(mine) == 0:
            unscored.append(names.classes[i])
            rewards = np.zeros(len(texts))
        else:
            rewards = (emb.astype(np.float64) @ mine.astype(np.float64).T).mean(axis=1)
        # Stable on ties, so equal rewards keep file order.
        top = np.argsort(-rewards, kind="stable")[: opts.select_descriptions]
        chosen[i] = mean_rows(emb[top])
        report_classes[names.classes[i]] = [{"text": texts[j], "reward": float(rewards[j])} for j in top]
    if unscored and warn:
        warn(f"{len(unscored)} class(es) have no images in split {opts.score_split!r}; their first "
             f"{opts.select_descriptions} descriptions are kept unscored: {short_list(unscored, 5)}")
    report = {"k": opts.select_descriptions, "scored_split": opts.score_split, "evaluated_split": eval_split,
              "scored_images": len(score_items), "selected": report_classes, "unscored_classes": unscored}
    return {"chosen": chosen, "all": every}, report


def _write_confused(path, confused: list[dict], dataset: str, model: str) -> None:
    from pcclip_cli.core.io import write_jsonl_atomic

    write_jsonl_atomic(path, [{"kind": "classes", **c, "dataset": dataset, "model": model} for c in confused])


def generate_comparatives(llm: str, confused: list[dict], names: ClassNames, *, device: str | None = None,
                          warn=None) -> list[dict]:
    """Class comparatives for the confused pairs, both ways round, from an LLM (through `pcclip generate`'s
    library), checked like a comparatives file."""
    if not confused:
        raise PcclipError("no class pair is confused in the zero-shot predictions, so there is nothing to compare")
    from pcclip_cli.generation.run import generate_class_comparatives

    pairs = []
    for c in confused:
        a, b = display_name(c["first"]), display_name(c["second"])
        pairs += [(b, a), (a, b)]
    raw = generate_class_comparatives(llm, pairs, prompt="classes", max_tokens=80, device=device)
    records = []
    for n, rec in enumerate(raw, start=1):
        text = " ".join(str(rec.get("text") or "").split())
        if not text:
            if warn:
                warn(f"the LLM gave an empty comparative for {rec.get('first')!r} vs {rec.get('second')!r}; skipped")
            continue
        where = f"generated comparative {n}"
        records.append({**{k: v for k, v in rec.items() if k not in ("first", "second", "text")},
                        "kind": "classes", "first": names.resolve(rec.get("first"), where),
                        "second": names.resolve(rec.get("second"), where), "text": text})
    if not records:
        raise PcclipError(f"the LLM {llm!r} produced no usable comparatives for the confused pairs")
    return records
