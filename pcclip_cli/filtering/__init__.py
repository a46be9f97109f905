"""Filtering and auditing comparatives: the rules, the grounded checks, what a text says about each image, and
the fidelity audit."""
