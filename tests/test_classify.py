"""`pcclip classify`: zero-shot numbers, confused pairs, comparative prompting (Eq. 3), descriptions, selection."""

import json

import numpy as np
import pytest

from conftest import assert_clean_error
from pcclip_cli.clip.embeddings import embed_images
from pcclip_cli.data.datasets.base import load_dataset
from pcclip_cli.evaluation.formulas import apply_comparatives

TEMPLATE = "This is a photo of a {}."


@pytest.fixture(scope="module")
def colours(world):
    return world / "classes" / "colour.jsonl"


def direct(clip, manifest, split="test"):
    ds = load_dataset(manifest)
    items = ds.in_split(split)
    g = embed_images(clip, [it.path for it in items]).vectors
    true = np.array([ds.classes.index(it.label) for it in items])
    f = clip.encode_texts([TEMPLATE.format(c) for c in ds.classes])
    return ds, g, true, f


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_zero_shot_matches_direct_argmax(cli, micro_clip, colours, tmp_path):
    confused = tmp_path / "confused.jsonl"
    r = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--confused-out", confused, "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    ds, g, true, f = direct(micro_clip, colours)
    pred = np.argmax(g @ f.T, axis=1)
    zs = out["zero_shot"]
    assert out["split"] == "test" and out["images"] == len(true) and out["classes"] == ds.classes
    assert zs["accuracy"] == pytest.approx(float((pred == true).mean()))
    logits = g.astype(np.float64) @ f.astype(np.float64).T
    above = (logits > logits[np.arange(len(true)), true][:, None]).sum(axis=1)  # classes ranked above the truth
    assert zs["topk"] == pytest.approx({f"top{k}": float((above < k).mean()) for k in (1, 3, 5)})
    assert zs["topk"]["top1"] == zs["accuracy"]
    assert "linear_probe" not in out
    cm = np.array(zs["confusion"])
    assert cm.sum() == len(true) and np.array_equal(cm.sum(axis=1), np.bincount(true, minlength=len(ds.classes)))
    for i, c in enumerate(ds.classes):
        n = int((true == i).sum())
        assert zs["per_class"][c]["images"] == n
        if n:
            assert zs["per_class"][c]["accuracy"] == pytest.approx(float((pred[true == i] == i).mean()))
    counts = [c["confusions"] for c in zs["top_confused"]]
    assert counts == sorted(counts, reverse=True) and len(counts) <= 3
    written = [json.loads(line) for line in confused.read_text().splitlines()]
    assert [(w["first"], w["second"], w["confusions"]) for w in written] == \
        [(c["first"], c["second"], c["confusions"]) for c in zs["top_confused"]]
    assert all(w["kind"] == "classes" for w in written)


def test_linear_probe_fits_on_train_and_reports_test_top1(cli, micro_clip, colours):
    from pcclip_cli.evaluation.metrics import holdout_split, linear_probe

    out = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--linear-probe", "--json").json()
    p = out["linear_probe"]
    ds = load_dataset(colours)
    train, test = ds.in_split("train"), ds.in_split("test")
    assert (p["train_split"], p["test_split"], p["seed"]) == ("train", "test", 0)
    assert p["fit_images"] + p["val_images"] == len(train) and p["test_images"] == len(test)
    # The same probe from the embeddings directly: the seeded hold-out of train, then metrics.linear_probe.
    fit, val = holdout_split([it.label for it in train], 0.25, seed=0)
    gt = embed_images(micro_clip, [it.path for it in train]).vectors
    gs = embed_images(micro_clip, [it.path for it in test]).vectors
    ref = linear_probe(gt[fit], [train[i].label for i in fit], gt[val], [train[i].label for i in val], gs,
                       [it.label for it in test])
    assert (p["top1"], p["C"], p["val_top1"]) == (ref.top1, ref.C, ref.val_top1)
    plain = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--linear-probe")
    assert "linear probe:" in plain.stderr and "top-3" in plain.stderr


def test_confused_file_is_what_generate_reads(cli, colours, tmp_path):
    from pcclip_cli.generation.plan import read_class_pairs

    confused = tmp_path / "confused.jsonl"
    cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--confused-out", confused)
    pairs = read_class_pairs(confused)
    assert pairs and all(len(p) == 2 for p in pairs)


def test_comparative_prompting_is_eq3_on_the_template(cli, micro_clip, colours, tmp_path):
    recs = [{"kind": "classes", "first": "red", "second": "orange", "text": "The first is red, the second orange."},
            {"kind": "classes", "first": "orange", "second": "red", "text": "The first is orange, the second red."},
            {"kind": "classes", "first": "Blue", "second": "purple", "text": "Blue rather than purple."}]
    comp = write_jsonl(tmp_path / "comp.jsonl", recs)
    out = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--comparative", comp, "--alpha", 0.7,
              "--json").json()
    ds, g, true, f = direct(micro_clip, colours)
    idx = {c: i for i, c in enumerate(ds.classes)}
    t = micro_clip.encode_texts([r["text"] for r in recs])
    updates = [(idx[r["second"]], idx[r["first"].lower()], t[k]) for k, r in enumerate(recs)]
    after = np.argmax(g @ apply_comparatives(f, updates, 0.7).T, axis=1)
    c = out["comparative"]
    assert c["after"]["accuracy"] == pytest.approx(float((after == true).mean()))
    assert c["touched"] == ["blue", "orange", "purple", "red"] and c["updated"] == ["orange", "purple", "red"]
    mask = np.isin(true, [idx[x] for x in c["touched"]])
    assert c["after"]["touched_accuracy"] == pytest.approx(float((after[mask] == true[mask]).mean()))
    assert c["before"]["accuracy"] == out["zero_shot"]["accuracy"]
    before = np.argmax(g @ f.T, axis=1)
    d = (after[mask] == true[mask]).astype(float) - (before[mask] == true[mask]).astype(float)
    paired = c["paired"]["touched"]
    assert (paired["images"], paired["fixed"], paired["broken"]) == (int(mask.sum()), int((d > 0).sum()),
                                                                    int((d < 0).sum()))
    assert paired["gain_se"] == pytest.approx(float(d.std(ddof=1) / np.sqrt(len(d))))
    assert c["paired"]["all"]["images"] == len(true)
    unchanged = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--comparative", comp,
                    "--alpha", 1, "--json").json()["comparative"]
    assert unchanged["after"] == unchanged["before"]
    assert unchanged["paired"]["all"]["fixed"] == unchanged["paired"]["all"]["broken"] == 0


def test_comparative_auto_generates_both_directions(cli, colours, tmp_path):
    saved = tmp_path / "auto.jsonl"
    out = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--comparative", "auto", "--llm",
              "template", "--top-k", 2, "--save-comparatives", saved, "--json").json()
    pairs = {(c["first"], c["second"]) for c in out["zero_shot"]["top_confused"]}
    got = {(r["first"], r["second"]) for r in out["comparative"]["records"]}
    assert got == pairs | {(b, a) for a, b in pairs}
    assert len(saved.read_text().splitlines()) == len(got)


def test_descriptions_and_selection_scored_on_train_evaluated_on_test(cli, micro_clip, colours, tmp_path):
    ds = load_dataset(colours)
    recs = []
    for c in ds.classes:
        recs += [{"kind": "descriptions", "first": c, "text": f"a {c} shape on a dark background"},
                 {"kind": "descriptions", "first": c, "text": "a picture"},
                 {"kind": "descriptions", "first": c, "text": f"something coloured {c}"}]
    desc = write_jsonl(tmp_path / "desc.jsonl", recs)
    out = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--descriptions", desc,
              "--select-descriptions", 2, "--json").json()
    sel = out["selection"]
    assert sel["scored_split"] == "train" and sel["evaluated_split"] == "test" and sel["k"] == 2
    assert sel["gain_over_template"] == pytest.approx(sel["selected_accuracy"] - sel["template_accuracy"])
    # the reward is the mean cosine to that class's train images
    train = [it for it in ds.in_split("train") if it.label == "red"]
    g = embed_images(micro_clip, [it.path for it in train]).vectors
    texts = [r["text"] for r in recs if r["first"] == "red"]
    rewards = (micro_clip.encode_texts(texts) @ g.T).mean(axis=1)
    best = [texts[i] for i in np.argsort(-rewards, kind="stable")[:2]]
    assert [d["text"] for d in sel["selected"]["red"]] == best
    assert out["descriptions"]["template_accuracy"] == sel["template_accuracy"]
    plain = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--descriptions", desc,
                "--select-descriptions", 2)
    assert "scored on split 'train'" in plain.stderr and "evaluated on split 'test'" in plain.stderr


def test_image_folder_dataset(cli, world, tmp_path):
    import shutil

    rows = [json.loads(line) for line in (world / "classes" / "shape.jsonl").read_text().splitlines()]
    for row in rows[:12]:
        dest = tmp_path / "data" / row["label"]
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(world / "classes" / row["image"], dest)
    out = cli("classify", "--dataset", tmp_path / "data", "--model", "pcclip-micro", "--json").json()
    assert out["split"] is None and out["images"] == 12
    assert out["classes"] == sorted({r["label"] for r in rows[:12]})
    r = cli("classify", "--dataset", tmp_path / "data", "--model", "pcclip-micro", "--linear-probe")
    assert r.code == 1 and "has no split 'train'" in r.stderr


def test_comparative_naming_an_unknown_class_is_a_clean_error(run_pcclip, colours, tmp_path):
    comp = write_jsonl(tmp_path / "c.jsonl", [{"kind": "classes", "first": "red", "second": "magenta", "text": "x"}])
    result = run_pcclip("classify", "--dataset", colours, "--model", "pcclip-micro", "--comparative", comp)
    assert_clean_error(result, "'magenta' is not in the dataset")


def test_one_class_dataset_is_refused(cli, world, tmp_path):
    rows = [json.loads(line) for line in (world / "classes" / "colour.jsonl").read_text().splitlines()]
    one = write_jsonl(tmp_path / "one.jsonl", [{**r, "image": str(world / "classes" / r["image"]), "label": "red"}
                                               for r in rows[:5]])
    r = cli("classify", "--dataset", one, "--model", "pcclip-micro")
    assert r.code == 1 and "needs at least two" in r.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--alpha", "1.5"], "--alpha must be in [0, 1]"),
    (["--alpha", "-0.1"], "--alpha must be in [0, 1]"),
    (["--comparative", "auto"], "needs --llm"),
    (["--select-descriptions", "2"], "--descriptions FILE"),
    (["--template", "a photo"], "--template must contain"),
    (["--split", "validation"], "no split 'validation'"),
    (["--linear-probe", "--split", "train"], "also the evaluation split"),
    (["--linear-probe", "--probe-split", "val"], "no split 'val'"),
])
def test_bad_classify_options(cli, colours, args, fragment):
    r = cli("classify", "--dataset", colours, "--model", "pcclip-micro", *args)
    assert r.code == 1 and len(r.error_lines()) == 1 and fragment in r.stderr, r.stderr


def test_selection_on_the_evaluation_split_is_refused(cli, colours, tmp_path):
    desc = write_jsonl(tmp_path / "d.jsonl", [{"kind": "descriptions", "first": "red", "text": "red"}])
    r = cli("classify", "--dataset", colours, "--model", "pcclip-micro", "--descriptions", desc,
            "--select-descriptions", 1, "--split", "train", "--score-split", "train")
    assert r.code == 1 and "leaks" in r.stderr


def test_named_dataset_needs_its_files(cli, tmp_path):
    r = cli("classify", "--dataset", "cifar100", "--model", "pcclip-micro")
    assert r.code == 1 and "--data-root" in r.stderr
    r = cli("classify", "--dataset", "cifar100", "--data-root", tmp_path, "--model", "pcclip-micro")
    assert r.code == 1 and f"{tmp_path}/cifar-100-python/train" in r.stderr
    r = cli("classify", "--dataset", "flowers102", "--data-root", tmp_path, "--model", "pcclip-micro")
    assert r.code == 1 and "flowers-102/imagelabels.mat" in r.stderr


def test_auto_with_nothing_confused_reports_a_skip(micro_clip, world):
    from pcclip_cli.data.datasets.base import Dataset, LabeledImage
    from pcclip_cli.evaluation.classification import ClassifyOptions, classify

    # Label every test image with the class the model predicts for it: a real model that confuses nothing.
    ds, g, _, f = direct(micro_clip, world / "classes" / "shape.jsonl")
    pred = np.argmax(g @ f.T, axis=1)
    items = [LabeledImage(it.path, it.id, ds.classes[p], "test") for it, p in zip(ds.in_split("test"), pred,
                                                                                   strict=True)]
    out = classify(micro_clip, Dataset("agree", "agree", items, ds.classes),
                   ClassifyOptions(comparative="auto", llm="template"))
    assert out["zero_shot"]["accuracy"] == 1.0 and out["zero_shot"]["top_confused"] == []
    assert out["comparative"]["skipped"].startswith("nothing to act on")
    assert out["comparative"]["records"] == []
