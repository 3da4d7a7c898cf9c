"""The original test background model: images, spectra and evaluation
=====================================================================

``make_test_bg_cube_model`` builds the analytic background model that the
original Gammapy used in its tests and documentation: a power law in energy
times a Gaussian in the field of view that widens towards low energies. No
data are needed. This example plots it the way users of the original
``FOVCube`` did, and evaluates it at a few positions.
"""

# sphinx_gallery_bgcube = "run"
import astropy.units as u
import matplotlib.pyplot as plt

from bgcube.simulate import make_test_bg_cube_model

# %%
# Build the model
# ---------------
# A `FOVCubeBackgroundModel` with counts, time and rate cubes; its
# ``background_cube`` is the rate in 1/(MeV s sr), indexed
# ``[energy, dety, detx]``.
model = make_test_bg_cube_model(ndetx_bins=24, ndety_bins=24, nenergy_bins=12)
cube = model.background_cube
print(cube)

# %%
# An image at one energy and a spectrum at one position
# -----------------------------------------------------
# ``plot_image`` and ``plot_spectrum`` take an ``ax`` or open a new figure.
fig, (ax_image, ax_spectrum) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
cube.plot_image(energy=2 * u.TeV, ax=ax_image)
cube.plot_spectrum(coord=[0, 0] * u.deg, ax=ax_spectrum)
cube.plot_spectrum(coord=[2, 2] * u.deg, ax=ax_spectrum)
ax_spectrum.legend(["(0, 0) deg", "(2, 2) deg"])

# %%
# Evaluate the rate anywhere
# --------------------------
# ``evaluate`` interpolates between bin centres (linear in DETX and DETY,
# logarithmic in energy and rate, as Gammapy's ``Background3D``).
rate = cube.evaluate(detx=[0, 1, 2] * u.deg, dety=[0, 0, 0] * u.deg, energy=1 * u.TeV)
print(rate.to("1 / (MeV s sr)"))
