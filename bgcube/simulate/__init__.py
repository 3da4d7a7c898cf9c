"""Simulation: the original test background model, simulated DL3 datasets, truth comparisons."""

from .testmodel import altitude_norm, make_test_bg_cube_model

__all__ = ["altitude_norm", "make_test_bg_cube_model"]
