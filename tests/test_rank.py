"""`pcclip rank`: two images, N images by one sort, the task benchmark, and its bad inputs."""

import json

import numpy as np
import pytest

from conftest import assert_clean_error
from pcclip_cli.clip.embeddings import embed_images
from pcclip_cli.data.attributes import attribute_ensemble, expand_attribute
from pcclip_cli.data.records import read_captions
from pcclip_cli.data.tasks import load_task, sample_trials
from pcclip_cli.evaluation.formulas import mean_se


@pytest.fixture(scope="module")
def imgs(world):
    return [r.path for r in read_captions(world / "captions.jsonl")[:6]]


def direct_scores(clip, paths, sentences):
    """g . f(T) with f(T) the mean of the sentences' unit text embeddings, renormalised (the prompt ensemble)."""
    g = embed_images(clip, paths).vectors
    t = clip.encode_texts(list(sentences)).mean(axis=0)
    return g @ (t / np.linalg.norm(t))


def test_two_images_answer_and_score_match_the_rule(cli, micro_clip, imgs):
    r = cli("rank", imgs[0], imgs[1], "larger", "--model", "pcclip-micro", "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    query = expand_attribute("larger")
    assert out["text"] == query.text and out["expanded"] is True
    assert out["sentences"][0] == query.text and len(out["sentences"]) > 1 and out["templates"] == "default"
    s = direct_scores(micro_clip, imgs[:2], out["sentences"])
    assert out["score"] == pytest.approx(float(s[0] - s[1]), abs=1e-5)
    assert out["answer"] == ("first" if s[0] - s[1] >= 0 else "second")
    swapped = cli("rank", imgs[1], imgs[0], "larger", "--model", "pcclip-micro", "--json").json()
    assert swapped["score"] == pytest.approx(-out["score"], abs=1e-6)
    assert swapped["answer"] != out["answer"] or out["score"] == 0


def test_full_sentence_is_used_as_given(cli, imgs):
    sentence = "The first image has a redder shape than the second image."
    out = cli("rank", imgs[0], imgs[1], sentence, "--model", "pcclip-micro", "--json").json()
    assert out["text"] == sentence and out["expanded"] is False and out["sentences"] == [sentence]


def test_many_images_are_sorted_by_one_score_each(cli, micro_clip, imgs, world, tmp_path):
    folder_out = cli("rank", *imgs, "bluer", "--model", "pcclip-micro", "--json").json()
    scores = direct_scores(micro_clip, imgs, attribute_ensemble("bluer").sentences)
    expect = [str(imgs[i]) for i in np.argsort(-scores, kind="stable")]
    assert [row["image"] for row in folder_out["order"]] == expect
    assert "answer" not in folder_out and folder_out["images"] == 6
    # the same images listed in a manifest give the same order
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"image": str(p)}) + "\n" for p in imgs))
    from_manifest = cli("rank", manifest, "bluer", "--model", "pcclip-micro", "--json").json()
    assert [row["image"] for row in from_manifest["order"]] == expect
    # people's output goes to stderr, nothing on stdout without --json
    plain = cli("rank", *imgs[:3], "bluer", "--model", "pcclip-micro")
    assert plain.code == 0 and plain.stdout == "" and "bluer" in plain.stderr


def test_unreadable_image_is_skipped_on_request(cli, imgs, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    r = cli("rank", *imgs[:3], bad, "larger", "--model", "pcclip-micro", "--on-bad-image", "skip", "--json")
    assert r.code == 0 and r.json()["images"] == 3 and r.json()["skipped"][0]["image"] == str(bad)
    stop = cli("rank", *imgs[:3], bad, "larger", "--model", "pcclip-micro")
    assert stop.code == 1 and "unreadable image" in stop.stderr


def test_benchmark_numbers_are_mean_and_se_of_recomputed_seeds(cli, micro_clip, world):
    task_file = world / "tasks" / "size.toml"
    out = cli("rank", "--task", task_file, "--model", "pcclip-micro", "--seeds", 3, "--pairs", 20, "--json").json()
    assert out["n_pairs"] == 60 and out["seeds"] == [0, 1, 2] and out["pairs_per_seed"] == 20
    accs = [p["accuracy"] for p in out["per_seed"]]
    mean, se = mean_se(accs)
    assert out["accuracy"] == pytest.approx({"mean": mean, "se": se})
    import hashlib

    assert out["task"]["sha256"] == hashlib.sha256(task_file.read_bytes()).hexdigest()
    # recompute seed 1 by hand: sign of (g1 - g2).f(T) against the text's truth
    task = load_task(task_file)
    trials, _ = sample_trials(task, 1, 20)
    paths = [task.items[i].path for i in range(len(task.items))]
    g = dict(zip(map(str, paths), embed_images(micro_clip, paths).vectors, strict=True))
    texts = dict(zip([t.text for t in trials], micro_clip.encode_texts([t.text for t in trials]), strict=True))
    correct = 0
    for t in trials:
        s = float((g[str(task.items[t.first].path)] - g[str(task.items[t.second].path)]) @ texts[t.text])
        correct += (s >= 0) == t.holds
    assert out["per_seed"][1]["sentence_accuracy"] == pytest.approx(correct / 20)
    # The headline is the mean over the held-out paraphrases, each scored on the same trials.
    per_paraphrase = []
    for k in range(len(trials[0].paraphrases)):
        f = micro_clip.encode_texts([t.paraphrases[k] for t in trials])
        ok = [(float((g[str(task.items[t.first].path)] - g[str(task.items[t.second].path)]) @ f[i]) >= 0) == t.holds
              for i, t in enumerate(trials)]
        per_paraphrase.append(sum(ok) / 20)
    assert len(per_paraphrase) == 5 == len(out["paraphrases"])
    assert out["per_seed"][1]["paraphrase_accuracy"] == pytest.approx(per_paraphrase)
    assert out["per_seed"][1]["accuracy"] == pytest.approx(sum(per_paraphrase) / 5)
    assert out["measured_on"] == "paraphrases"
    means = [p["accuracy"]["mean"] for p in out["paraphrases"]]
    assert out["accuracy"]["mean"] == pytest.approx(sum(means) / len(means))
    again = cli("rank", "--task", task_file, "--model", "pcclip-micro", "--seeds", 3, "--pairs", 20, "--json").json()
    assert again["per_seed"] == out["per_seed"]


def test_trials_are_balanced_and_their_truth_is_right(world):
    task = load_task(world / "tasks" / "size.toml")
    large, small = set(task.groups["large"]), set(task.groups["small"])
    pair = task.pairs[0]
    assert pair["reverse"] == "The first image contains a smaller object, while the second contains a larger object."
    trials, skipped = sample_trials(task, 0, 400)
    assert skipped == 0
    for t in trials:
        forward = t.text == pair["text"]
        assert forward or t.text == pair["reverse"]
        first_large = t.first in large
        assert (t.second in small) if first_large else (t.first in small and t.second in large)
        assert t.holds == (first_large == forward)
    holds = sum(t.holds for t in trials) / len(trials)
    assert 0.4 < holds < 0.6  # a model that always says "holds" gets about half


def test_attribute_trials_name_only_differences(world):
    task = load_task(world / "tasks" / "attributes.toml")
    trials, skipped = sample_trials(task, 0, 50)
    assert len(trials) == 50
    for t in trials:
        a, b = task.attribute_sets[t.first], task.attribute_sets[t.second]
        assert a != b
        assert "medium" not in t.text  # excluded value
        if t.holds:
            only_first = ", ".join(sorted(a - b)) or "none"
            assert t.text.startswith(f"The first image has attributes of {only_first},")


def test_texts_task_from_a_comparatives_file(cli, world, tmp_path):
    recs = [{"kind": "pairs", "first": f"img_{i:06d}", "second": f"img_{i + 1:06d}",
             "text": "The first picture shows a different shape from the second picture."} for i in range(0, 20, 2)]
    (tmp_path / "comp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "t.toml").write_text(f'name = "t"\nkind = "texts"\nmanifest = "{world}/captions.jsonl"\n'
                                     'comparatives = "comp.jsonl"\n')
    out = cli("rank", "--task", tmp_path / "t.toml", "--model", "pcclip-micro", "--seeds", 2, "--pairs", 8,
              "--json").json()
    assert out["n_pairs"] == 16 and out["task"]["records"] == 10


def test_missing_image_is_one_clean_error(run_pcclip, imgs, tmp_path):
    result = run_pcclip("rank", imgs[0], tmp_path / "nope.png", "larger", "--model", "pcclip-micro")
    assert_clean_error(result, "nope.png", "not found")


@pytest.mark.parametrize("args, fragment", [
    (["IMG0", "larger"], "at least two images"),
    (["IMG0", "IMG1", "   "], "empty attribute"),
    (["IMG0", "IMG1"], "the last argument"),
    ([], "IMAGES... ATTRIBUTE"),
])
def test_bad_rank_inputs(cli, imgs, args, fragment):
    args = [str(imgs[0]) if a == "IMG0" else str(imgs[1]) if a == "IMG1" else a for a in args]
    r = cli("rank", *args, "--model", "pcclip-micro")
    assert r.code == 1 and len(r.error_lines()) == 1 and fragment in r.error_lines()[0], r.stderr


@pytest.mark.parametrize("body, fragment", [
    ('[groups.a]\ncount = 1\n[[pairs]]\nfirst = "a"\nsecond = "b"\ntext = "x y z"\n', "unknown group 'b'"),
    ('[groups.a]\ncount = 1\n[groups.b]\ncolour = "silver"\n[[pairs]]\nfirst = "a"\nsecond = "b"\ntext = "x y z"\n',
     "group 'b' is empty"),
    ('[groups.a]\ncount = 1\n', "[[pairs]]"),
    ('colour = "x"\n[groups.a]\ncount = 1\n', "unknown key(s) colour"),
    ('[groups.a]\ncount = 1\n[groups.b]\ncount = 2\n[[pairs]]\nfirst = "a"\nsecond = "b"\ntext = "x y z"\n'
     '[[pairs.paraphrases]]\ntext = "p q r"\n', "both text and reverse"),
])
def test_bad_task_files(cli, world, tmp_path, body, fragment):
    task = tmp_path / "bad.toml"
    task.write_text(f'kind = "groups"\nmanifest = "{world}/captions.jsonl"\nsplit = "test"\n' + body)
    r = cli("rank", "--task", task, "--model", "pcclip-micro")
    assert r.code == 1 and fragment in r.stderr, r.stderr


def test_bad_seed_counts(cli, world):
    r = cli("rank", "--task", world / "tasks" / "size.toml", "--model", "pcclip-micro", "--seeds", 0)
    assert r.code == 1 and "--seeds" in r.stderr
