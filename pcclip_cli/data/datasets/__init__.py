"""Datasets as they ship: caption converters (COCO, CUB) and loaders of the paper's evaluation datasets."""
