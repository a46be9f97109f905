"""`rank`: order images by an attribute with one sort, and the difference-based classification benchmark."""

from __future__ import annotations

from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.records import OnError, collect_images


def rank_images(model, inputs: list[str], attribute: str, *, on_error: OnError = OnError.stop,
                device: str | None = None, progress=None, warn=None, templates=None) -> dict:
    """Order images (files, folders, manifests) by how much of `attribute` each shows.

    Two images get the paper's answer: "first" iff (g1 - g2).f(T) >= 0. More are sorted by g.f(T), which is the
    same rule for every pair at once (O(N) embeddings and one sort, never the N^2 pairs). f(T) is the prompt
    ensemble of the attribute (data.attributes; `templates` names another template set or file). A SPEC `model`
    loads on `device` (None: auto).
    """
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.data.attributes import attribute_ensemble, ensemble_vector
    from pcclip_cli.models import clip_for

    from .formulas import attribute_scores, order_by_scores, rank_score

    query = attribute_ensemble(attribute, templates)
    if not inputs:
        raise PcclipError("rank needs at least two images (files, folders or a manifest) before the attribute")
    items = collect_images(inputs)
    if len(items) < 2:
        hint = ""
        if Path(attribute).exists():
            hint = f"; the last argument ({attribute}) is read as the attribute, so add the attribute after the images"
        raise PcclipError(f"rank needs at least two images, got {len(items)}{hint}")
    clip = clip_for(model, device)
    emb = embed_images(clip, [it.path for it in items], on_error=on_error, progress=progress, warn=warn)
    by_path = {str(p): i for i, p in enumerate(emb.paths)}
    kept = [it for it in items if str(it.path) in by_path]
    if len(kept) < 2:
        raise DataError(f"only {len(kept)} of {len(items)} images could be read; rank needs at least two")
    vectors = emb.vectors[[by_path[str(it.path)] for it in kept]]
    text = ensemble_vector(clip, query)
    scores = attribute_scores(vectors, text)
    order = order_by_scores(scores)
    result = {
        "model": clip.spec,
        "fingerprint": clip.fingerprint,
        "attribute": query.attribute,
        "text": query.text,
        "sentences": list(query.sentences),
        "templates": query.templates,
        "expanded": query.expanded,
        "images": len(kept),
        "order": [{"rank": r + 1, "image": str(kept[i].path), "id": kept[i].id, "score": float(scores[i])}
                  for r, i in enumerate(order)],
        "skipped": [{"image": str(p), "reason": why} for p, why in emb.skipped],
    }
    if len(kept) == 2:
        score = rank_score(vectors[0], vectors[1], text)
        result.update(answer="first" if score >= 0 else "second", score=score, first=str(kept[0].path),
                      second=str(kept[1].path))
    return result


def run_rank_task(model, task_path: str | Path, *, seeds: int = 5, pairs: int = 100, seed: int = 0,
                  data_root: str | Path | None = None, device: str | None = None, progress=None, warn=None,
                  examples: int = 5) -> dict:
    """Difference-based classification (paper §4.2): accuracy over `pairs` trials per seed, mean ± SE over seeds."""
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.data.tasks import check_seeds, load_task, sample_trials
    from pcclip_cli.models import clip_for

    from .formulas import mean_se

    check_seeds(seeds, pairs)
    task = load_task(task_path, data_root)
    clip = clip_for(model, device)
    seed_list = [seed + k for k in range(seeds)]
    drawn = {s: sample_trials(task, s, pairs) for s in seed_list}
    needed = sorted({i for trials, _ in drawn.values() for t in trials for i in (t.first, t.second)})
    wanted = [task.items[i] for i in needed]
    task.dataset.ensure_files(wanted)
    emb = embed_images(clip, [it.path for it in wanted], progress=progress, warn=warn)
    row = {str(p): r for r, p in enumerate(emb.paths)}
    texts = sorted({x for trials, _ in drawn.values() for t in trials for x in (t.text, *t.paraphrases)})
    text_emb = clip.encode_texts(texts)
    text_row = {t: i for i, t in enumerate(texts)}
    n_para = task.paraphrase_count
    per_seed, sample = [], []
    for s in seed_list:
        trials, skipped = drawn[s]
        g1 = emb.vectors[[row[str(task.items[t.first].path)] for t in trials]]
        g2 = emb.vectors[[row[str(task.items[t.second].path)] for t in trials]]
        scores, correct, sentence = _trial_accuracy(g1, g2, text_emb[[text_row[t.text] for t in trials]], trials)
        para = [_trial_accuracy(g1, g2, text_emb[[text_row[t.paraphrases[k]] for t in trials]], trials)[2]
                for k in range(n_para)]
        # With held-out paraphrases the headline is their mean: the task's own sentence is one wording only.
        per_seed.append({"seed": s, "accuracy": sum(para) / n_para if n_para else sentence,
                         "sentence_accuracy": sentence, "paraphrase_accuracy": para, "pairs": len(trials),
                         "skipped": skipped})
        if not sample:
            sample = [{"first": task.items[t.first].id, "second": task.items[t.second].id, "text": t.text,
                       "holds": t.holds, "score": float(sc), "correct": bool(c)}
                      for t, sc, c in list(zip(trials, scores, correct, strict=True))[:examples]]
    mean, se = mean_se([p["accuracy"] for p in per_seed])
    s_mean, s_se = mean_se([p["sentence_accuracy"] for p in per_seed])
    paraphrases = []
    for k in range(n_para):
        p_mean, p_se = mean_se([p["paraphrase_accuracy"][k] for p in per_seed])
        first_pair = task.pairs[0] if task.pairs else None
        phrasing = first_pair["paraphrases"][k][0] if first_pair else task.templates[k]
        paraphrases.append({"text": phrasing, "accuracy": {"mean": p_mean, "se": p_se}})
    return {
        "task": task.summary(),
        "model": clip.spec,
        "fingerprint": clip.fingerprint,
        "seeds": seed_list,
        "pairs_per_seed": pairs,
        "n_pairs": sum(p["pairs"] for p in per_seed),
        "accuracy": {"mean": mean, "se": se},
        "measured_on": "paraphrases" if n_para else "sentence",
        "sentence_accuracy": {"mean": s_mean, "se": s_se},
        "paraphrases": paraphrases,
        "chance": 0.5,
        "per_seed": per_seed,
        "texts": len(texts),
        "images_embedded": len(wanted),
        "examples": sample,
    }


def _trial_accuracy(g1, g2, texts, trials):
    """Scores (g1 - g2) . f(T), which trials they get right, and the share right."""
    from .formulas import pair_scores

    scores = pair_scores(g1, g2, texts)
    correct = [(v >= 0) == t.holds for v, t in zip(scores, trials, strict=True)]
    return scores, correct, sum(correct) / len(correct)


def order_concordance(clip, items, attribute: str, truth_key: str, truth_order: dict, *, progress=None) -> dict:
    """Sort labelled images by `attribute` and measure how often pairs with different true values come out in
    the right order (the shapes suite uses it with "larger" and the size attribute). It scores with the single
    comparative sentence PC-CLIP is trained on, not an ensemble, so the metric stays the paper's."""
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.data.attributes import attribute_ensemble

    from .formulas import attribute_scores, concordance

    query = attribute_ensemble(attribute, "single-sentence")
    items = [it for it in items if it.value(truth_key) in truth_order]
    if len(items) < 2:
        raise DataError(f"fewer than two images have a {truth_key} to order by")
    emb = embed_images(clip, [it.path for it in items], progress=progress)
    scores = attribute_scores(emb.vectors, clip.encode_texts([query.text])[0])
    truth = [truth_order[it.value(truth_key)] for it in items]
    return {"attribute": query.attribute, "text": query.text, "truth": truth_key, "images": len(items),
            "concordance": concordance(list(scores), truth)}
