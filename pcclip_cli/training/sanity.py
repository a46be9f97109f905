"""Quick scores during and after training: zero-shot accuracy on a class manifest, difference accuracy on a
groups task. Both read their files through the readers every command uses (tasks.load_dataset, tasks.load_task)."""

from __future__ import annotations

from pathlib import Path

from pcclip_cli.core.errors import DataError


def preprocess_all(preprocess, paths: list[Path], progress=None):
    import torch

    from pcclip_cli.data.records import open_image

    out = []
    for i, p in enumerate(paths):
        out.append(preprocess(open_image(p)))
        if progress and (i + 1) % 200 == 0:
            progress(i + 1, len(paths), stage="loading images")
    return torch.stack(out) if out else torch.zeros(0)


def encode_pixels(model, pixels, device, batch: int = 256):
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(pixels), batch):
            out.append(model.encode_image(pixels[s : s + batch].to(device), normalize=True).float().cpu())
    return torch.cat(out)


def encode_texts(model, tokenizer, texts: list[str], device, batch: int = 256):
    import torch

    from pcclip_cli.clip.text_trim import encode_text

    out = []
    with torch.no_grad():
        for s in range(0, len(texts), batch):
            tokens = tokenizer(texts[s : s + batch]).to(device)
            out.append(encode_text(model, tokens, normalize=True).float().cpu())
    return torch.cat(out)


class SanityEval:
    """A quick score computed after each epoch (`--eval-task`), so a collapse is seen at once.

    A `.jsonl` class manifest (image, label, split) gives zero-shot accuracy on its test split (all rows when
    it has none); a groups task TOML gives difference accuracy: over all (a, b) with a from `first` and b
    from `second`, how often (g(a) - g(b)) . f(text) > 0."""

    def __init__(self, path: str | Path, clip, template: str = "a photo of a {label}", max_images: int = 2000,
                 split: str | None = "task"):
        path = Path(path)
        self.path, self.template = path, template
        if path.suffix == ".toml":
            self.kind = "difference"
            self._load_groups(path, max_images, split)
        elif path.suffix == ".jsonl":
            self.kind = "zero_shot"
            self._load_manifest(path, max_images)
        else:
            raise DataError(f"--eval-task {path}: expected a class manifest (.jsonl) or a groups task (.toml)")
        self.pixels = preprocess_all(clip.preprocess, self.images)
        self.cached = None

    def _load_manifest(self, path: Path, max_images: int):
        from pcclip_cli.data.datasets.base import load_manifest

        items = load_manifest(path).items
        if any(it.split == "test" for it in items):
            items = [it for it in items if it.split == "test"]
        items = items[:max_images]
        unlabelled = [it for it in items if it.label is None]
        if unlabelled:
            raise DataError(f"{path}: image {unlabelled[0].id!r} has no \"label\"; an eval manifest row needs "
                            "\"image\" and \"label\"")
        self.images = [it.path for it in items]
        self.labels = sorted({it.label for it in items})
        self.targets = [self.labels.index(it.label) for it in items]

    def _load_groups(self, path: Path, max_images: int, split: str | None = "task"):
        from pcclip_cli.data.tasks import TaskKind, load_task

        task = load_task(path, split=split)
        if task.kind != TaskKind.groups:
            raise DataError(f"--eval-task {path}: only kind = \"groups\" task files (with [groups] and [[pairs]]) "
                            "are scored during training")
        members = {name: idx[: max_images // 2] for name, idx in task.groups.items()}
        self.images, index = [], {}
        for group in members.values():
            for i in group:
                if i not in index:
                    index[i] = len(self.images)
                    self.images.append(task.items[i].path)
        self.pairs = [([index[i] for i in members[p["first"]]], [index[i] for i in members[p["second"]]], p["text"])
                      for p in task.pairs]

    def score(self, model, tokenizer, device, image_tower_frozen: bool = False) -> dict:
        was_training = model.training
        model.eval()
        try:
            if image_tower_frozen and self.cached is not None:
                img = self.cached
            else:
                img = encode_pixels(model, self.pixels, device)
                if image_tower_frozen:
                    self.cached = img
            if self.kind == "zero_shot":
                import torch

                txt = encode_texts(model, tokenizer, [self.template.format(label=lb) for lb in self.labels], device)
                pred = (img @ txt.T).argmax(dim=1)
                acc = (pred == torch.tensor(self.targets)).float().mean().item()
                return {"zero_shot_accuracy": acc, "images": len(self.targets), "classes": len(self.labels)}
            correct = total = 0
            for a, b, text in self.pairs:
                f = encode_texts(model, tokenizer, [text], device)[0]
                sa, sb = img[a] @ f, img[b] @ f
                correct += int((sa[:, None] > sb[None, :]).sum().item())
                total += len(a) * len(b)
            return {"difference_accuracy": correct / total, "pairs": total}
        finally:
            model.train(was_training)


def difference_accuracy(clip, task: str | Path, split: str | None = "task") -> float:
    """How often (g(a) - g(b)) . f(text) > 0 over a groups task's pairs; split "task" is the task file's own,
    None means every image of the manifest."""
    ev = SanityEval(task, clip, split=split)
    return ev.score(clip.model, clip.tokenizer, clip.device)["difference_accuracy"]


def zero_shot_scores(clip, world: str | Path, attributes=("shape", "colour", "colour_shape", "size"),
                     template: str = "a photo of a {label}") -> dict:
    """Zero-shot accuracy of `clip` on a shapes world's class manifests (test split)."""
    out = {}
    for attr in attributes:
        ev = SanityEval(Path(world) / "classes" / f"{attr}.jsonl", clip, template)
        out[attr] = round(ev.score(clip.model, clip.tokenizer, clip.device)["zero_shot_accuracy"], 4)
    return out
