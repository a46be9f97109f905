"""Data formats and the embedded worlds: captions and manifests, comparatives, pairs, tasks, attribute words,
the shapes world, and the paper's datasets as they ship (datasets/)."""
