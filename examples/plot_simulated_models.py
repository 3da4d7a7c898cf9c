"""Build models from a simulated data set and compare them with the truth
========================================================================

The same pipeline that builds models from real runs (``make_models``, the
``bgcube make-models`` command) runs here on a small simulated GADF DL3 data
set whose background is known exactly, with one gamma-ray source that the
exclusion regions cut out. Comparing the reconstructed models with the truth
shows whether the machinery is right: the Poisson pulls of the counts have
mean 0 and width 1. The example builds the group models of the original
algorithm (``model="groups"``, a few seconds); the default joint model is
checked the same way by ``bgcube demo``. Everything is written into a
temporary folder, removed at the end.
"""

# sphinx_gallery_bgcube = "run"
import tempfile
from pathlib import Path

from bgcube.data import ExclusionRegions
from bgcube.make import make_models
from bgcube.simulate import (
    GaussianSource,
    compare_models,
    make_test_dataset,
    plot_comparison,
    sources_table,
)

tmp = tempfile.TemporaryDirectory(prefix="bgcube-gallery-")
workdir = Path(tmp.name)

# %%
# Simulate runs
# -------------
# Six half-hour runs with a known background and one source at the target
# position of the runs (the pointings wobble 0.5 deg around it).
source = GaussianSource("SIM-SRC", ra=83.0, dec=-30.0, sigma=0.08, rate=0.6, spectral_index=2.3)
dataset = make_test_dataset(workdir / "dataset", n_obs=6, random_state=1, sources=[source])
print(dataset)

# %%
# Build the models
# ----------------
# Events inside the exclusion circle are dropped and each run's time is
# reduced, pixel by pixel, by the fraction of the pixel inside the circle.
regions = ExclusionRegions.from_table(sources_table([source]))
result = make_models(
    dataset.path, workdir / "models", exclusion=regions, progress=False, model="groups"
)
print(result.summary_table())

# %%
# Compare with the truth
# ----------------------
# The truth of a group is the exact expected background of its runs, built
# with the group's binning and time convention.
group = next(g for g in result.groups if g.model is not None)
truth = dataset.true_model(group.obs_ids, time_convention=result.time_convention)
comparison = compare_models(group.model, truth)
print(f"pulls: mean {comparison.pull_mean:.3f}, width {comparison.pull_width:.3f}")
fig = plot_comparison(comparison)

# %%
# Clean up
# --------
# The temporary folder (the simulated data set and the models) goes away.
tmp.cleanup()
