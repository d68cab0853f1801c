"""Datasets: spec, built-in loaders."""
