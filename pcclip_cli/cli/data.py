"""`pcclip data`: build the shapes world, or convert caption datasets as they ship (COCO, CUB) to captions.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.data.datasets.captions import CaptionChoice
from pcclip_cli.data.records import OnError

from .console import JsonOption, emit_json, err, progress_bar, warn

app = typer.Typer(help="Build the shapes or produce world; convert COCO, CUB or webdataset shards to captions.jsonl.", no_args_is_help=True)


@app.command("shapes")
def shapes(
    out: Annotated[Path, typer.Argument(help="Directory to write the world into.")],
    images: Annotated[int, typer.Option(help="Number of images.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = 0,
    image_size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    two_objects: Annotated[float, typer.Option(help="Fraction of images with two objects.")] = 0.25,
    test_fraction: Annotated[float, typer.Option(help="Fraction of images in the test split.")] = 0.2,
    force: Annotated[bool, typer.Option(help="Replace a different world already in OUT.")] = False,
    json_out: JsonOption = False,
):
    """Write a shapes world: images, captions.jsonl, class manifests and benchmark task files."""
    from pcclip_cli.data.shapes import WorldConfig, build_world

    cfg = WorldConfig(images=images, seed=seed, image_size=image_size, two_object_fraction=two_objects,
                      test_fraction=test_fraction)
    _build_and_report(build_world, out, cfg, force, json_out, "drawing shapes")


def _build_and_report(build_world, out: Path, cfg, force: bool, json_out: bool, label: str) -> None:
    """Build a world with a progress bar; print its summary (JSON on stdout, or what was written on stderr)."""
    with progress_bar(label, enabled=not json_out) as progress:
        summary = build_world(out, cfg, force=force, progress=progress)
    if json_out:
        emit_json(summary)
        return
    verb = "reused" if summary["reused"] else "wrote"
    of_classes = f" of {len(summary['classes'])} classes" if summary.get("classes") else ""
    err.print(f"{verb} {summary['images']} images{of_classes} in {out} "
              f"(train {summary['splits'].get('train', 0)}, test {summary['splits'].get('test', 0)})")
    err.print(f"captions: {out}/captions.jsonl; classes: {', '.join(summary['class_manifests'])}")
    vocabulary = f"; audit vocabulary: {out}/vocabulary.toml" if (Path(out) / "vocabulary.toml").exists() else ""
    err.print(f"tasks: {', '.join(summary['tasks'])}{vocabulary}")


@app.command("produce")
def produce(
    out: Annotated[Path, typer.Argument(help="Directory to write the world into.")],
    images: Annotated[int, typer.Option(help="Number of images.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = 0,
    image_size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    test_fraction: Annotated[float, typer.Option(help="Fraction of images in the test split.")] = 0.2,
    name_share: Annotated[float, typer.Option(help="Share of captions that name the item (0-1); the rest "
                                                   "describe its looks only.")] = 0.5,
    variation: Annotated[float, typer.Option(help="Within-class variation (0-1): colour, size, proportions, "
                                                  "pose, parts left out, colour variants.")] = 0.5,
    force: Annotated[bool, typer.Option(help="Replace a different world already in OUT.")] = False,
    json_out: JsonOption = False,
):
    """Write the produce world (26 fruit and vegetables): images, captions, class manifests, task files."""
    from pcclip_cli.data.produce import ProduceConfig, build_world

    cfg = ProduceConfig(images=images, seed=seed, image_size=image_size, test_fraction=test_fraction,
                        name_share=name_share, variation=variation)
    _build_and_report(build_world, out, cfg, force, json_out, "drawing produce")


CaptionOpt = Annotated[CaptionChoice, typer.Option(
    help="Which caption each image's record carries: the first, one drawn at random (seeded), or all (one record "
         "per caption). Every record of first/random also lists all captions under attributes.captions.")]
ImagesOpt = Annotated[int | None, typer.Option(help="Keep a seeded random sample of N images (paper: 1000 COCO, "
                                                    "400 CUB test images).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of --images and --caption random.")]
BadImageOpt = Annotated[OnError, typer.Option(help="An image (or CUB caption file) that is missing stops the "
                                                   "conversion, or is skipped with a warning.")]


def _report(summary: dict, json_out: bool) -> None:
    if json_out:
        emit_json(summary)
        return
    err.print(f"wrote {summary['records']} records for {summary['images']} images to {summary['out']} "
              f"(caption: {summary['caption']}" + (f", {summary['sampled']} sampled with seed {summary['seed']}"
                                                   if summary["sampled"] else "") + ")")
    if summary["missing_images"]:
        err.print(f"skipped {summary['missing_images']} with missing files")


@app.command("coco")
def coco(
    annotations: Annotated[Path, typer.Argument(help="COCO captions JSON, e.g. annotations/captions_train2017.json.")],
    images_dir: Annotated[Path, typer.Argument(help="Its image folder, e.g. train2017/.")],
    out: Annotated[Path, typer.Argument(help="captions.jsonl to write (a folder gets captions.jsonl inside).")],
    caption: CaptionOpt = CaptionChoice.first,
    images: ImagesOpt = None,
    seed: SeedOpt = 0,
    split: Annotated[str | None, typer.Option(help="Split name written on every record (e.g. train).")] = None,
    on_bad_image: BadImageOpt = OnError.stop,
    json_out: JsonOption = False,
):
    """COCO caption annotations into captions.jsonl: one record per image with all its captions (streamed)."""
    from pcclip_cli.data.datasets.captions import CaptionsOptions, convert_coco

    opts = CaptionsOptions(caption=caption, images=images, seed=seed, split=split, on_bad_image=on_bad_image)
    _report(convert_coco(annotations, images_dir, out, opts, warn=warn), json_out)


@app.command("cub")
def cub(
    cub_root: Annotated[Path, typer.Argument(help="CUB_200_2011/ (images.txt, train_test_split.txt, "
                                                  "image_class_labels.txt, classes.txt, images/) or its parent.")],
    text_root: Annotated[Path, typer.Argument(help="Reed et al.'s captions: the folder holding text_c10/ "
                                                   "(<class>/<image>.txt, ten captions each), or text_c10/ itself.")],
    out: Annotated[Path, typer.Argument(help="captions.jsonl to write (a folder gets captions.jsonl inside).")],
    caption: CaptionOpt = CaptionChoice.first,
    images: ImagesOpt = None,
    seed: SeedOpt = 0,
    split: Annotated[str | None, typer.Option(help="Keep only train or test images (train_test_split.txt).")]
    = None,
    on_bad_image: BadImageOpt = OnError.stop,
    json_out: JsonOption = False,
):
    """CUB-200-2011 with Reed et al.'s per-image captions into captions.jsonl; ids are CUB's image ids."""
    from pcclip_cli.data.datasets.captions import CaptionsOptions, convert_cub

    opts = CaptionsOptions(caption=caption, images=images, seed=seed, split=split, on_bad_image=on_bad_image)
    _report(convert_cub(cub_root, text_root, out, opts, warn=warn), json_out)


@app.command("wds")
def wds(
    shards: Annotated[list[str], typer.Argument(help="Webdataset .tar shards: files, a folder of them, brace "
                                                     "patterns (shards/{00000..00099}.tar) or pipe: URLs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write images/<shard>/ and captions.jsonl into.")],
    on_bad_image: Annotated[OnError, typer.Option(help="A corrupt image or truncated shard stops the conversion, "
                                                       "or is skipped (counted) with a warning.")] = OnError.stop,
    json_out: JsonOption = False,
):
    """Webdataset shards (image + .txt or .json caption, the img2dataset layout) into an image folder and a
    captions.jsonl every command reads; resumable shard by shard."""
    from pcclip_cli.data.webdataset import convert_shards

    with progress_bar("reading shards", enabled=not json_out) as progress:
        summary = convert_shards(shards, out, on_error=on_bad_image, warn=warn, progress=progress)
    if json_out:
        emit_json(summary)
        return
    err.print(f"wrote {summary['records']} records from {summary['shards']} shards to {summary['manifest']}"
              + (f" ({summary['resumed_shards']} shards already done)" if summary["resumed_shards"] else ""))
    if summary["bad_images"] or summary["truncated_shards"] or summary["no_image"]:
        err.print(f"skipped {summary['bad_images']} corrupt images, {summary['no_image']} samples without an image; "
                  f"{summary['truncated_shards']} truncated shards")
    if summary["no_caption"]:
        err.print(f"{summary['no_caption']} records have no caption (fine for index, not for train --captions)")
