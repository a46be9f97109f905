"""Evaluation of a loaded model: formulas, ranking, classification, the probe, distance, metrics, the eval
suite, the paper's figures and the ablation report."""
