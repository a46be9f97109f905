"""CLIP models below the registry: the SPEC grammar and open_clip adapter, the loaded model, checkpoints, exact
text trimming and the image-embedding cache."""
