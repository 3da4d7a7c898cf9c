"""True versus reconstructed background models: ratios and Poisson pulls.

The comparison happens on the reconstructed model's binning. The true rate,
constant within the bins of its own cube, is integrated exactly over each
reconstructed bin (`bgcube.simulate.truth.integrate_rate`), so the two models
need not share their binning. Then, per reconstructed bin:

* expected counts ``N_exp = <true rate> * T_reco * dE * dOmega`` with
  ``T_reco`` the reconstructed time cube (which carries any exclusion
  regions) -- computed as ``T_reco * integral of the true rate``;
* pull ``(N_reco - N_exp) / sqrt(N_exp)`` with ``N_reco`` the reconstructed
  counts, over the bins with ``N_exp >= min_expected`` that the truth covers
  completely;
* ratio of the reconstructed to the true rate, the true rate taken in the
  reconstruction's solid-angle convention;
* model pull ``(ratio - 1) * sqrt(N_exp)``, i.e. ``(N_model - N_exp) / sqrt(N_exp)``
  with ``N_model`` the counts the reconstructed *rate* predicts. It equals the
  pull for an unsmoothed model; for a smoothed one it shows what smoothing
  does: less noise (width below 1) and any bias it brings (mean away from 0).

For a reconstruction that is right, the pulls have mean 0 and width 1 (up to
the Poisson skewness, about ``1 / sqrt(N_exp)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from ..backend import to_numpy
from ..cube import FOVCube
from .truth import integrate_rate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._types import PathLike
    from ..cube import FOVCube
    from ..model import FOVCubeBackgroundModel

__all__ = ["ModelComparison", "compare_models"]

_CORE_RATE = u.Unit("1 / (TeV s sr)")


@dataclass
class ModelComparison:
    """Result of `compare_models` (NumPy arrays indexed ``[energy, dety, detx]``).

    Attributes
    ----------
    reco : `~bgcube.FOVCubeBackgroundModel`
        The reconstructed model.
    true_rate : `~bgcube.FOVCube`
        The true rate on the reconstructed binning, in the reconstruction's
        unit and solid-angle convention.
    ratio : numpy.ndarray
        Reconstructed rate / true rate; NaN where the true rate is 0 or the
        truth does not cover the bin.
    coverage : numpy.ndarray
        Fraction of each bin's volume inside the true cube.
    expected : numpy.ndarray or None
        Expected counts ``N_exp`` per bin (None without counts and time cubes).
    pulls : numpy.ndarray or None
        ``(N_reco - N_exp) / sqrt(N_exp)``; NaN outside the bins used.
    used : numpy.ndarray of bool or None
        Bins entering the pull statistics.
    model_pulls : numpy.ndarray or None
        ``(ratio - 1) * sqrt(N_exp)`` on the bins used; NaN elsewhere.
    min_expected : float
        The ``N_exp`` threshold of the pulls.
    """

    reco: object
    true_rate: FOVCube
    ratio: np.ndarray
    coverage: np.ndarray
    expected: np.ndarray | None
    pulls: np.ndarray | None
    used: np.ndarray | None
    min_expected: float
    model_pulls: np.ndarray | None = None

    @property
    def n_bins(self) -> int:
        """Number of bins entering the pull statistics."""
        return 0 if self.used is None else int(np.count_nonzero(self.used))

    def _used_pulls(self):
        if self.n_bins == 0:
            return np.zeros(0)
        return self.pulls[self.used]

    @property
    def pull_mean(self) -> float:
        """Mean of the pulls (NaN without bins)."""
        p = self._used_pulls()
        return float(np.mean(p)) if p.size else float("nan")

    @property
    def pull_mean_error(self) -> float:
        """Standard error of the pull mean for unit-width pulls, ``1 / sqrt(n)``."""
        return float(1.0 / np.sqrt(self.n_bins)) if self.n_bins else float("nan")

    @property
    def pull_width(self) -> float:
        """Standard deviation of the pulls (``ddof=1``; NaN with fewer than 2 bins)."""
        p = self._used_pulls()
        return float(np.std(p, ddof=1)) if p.size > 1 else float("nan")

    @property
    def pull_width_error(self) -> float:
        """Standard error of the width for Gaussian pulls, ``1 / sqrt(2 (n - 1))``."""
        return float(1.0 / np.sqrt(2.0 * (self.n_bins - 1))) if self.n_bins > 1 else float("nan")

    @property
    def model_pull_mean(self) -> float:
        """Mean of the model pulls (NaN without bins)."""
        return float(np.mean(self.model_pulls[self.used])) if self.n_bins else float("nan")

    @property
    def model_pull_width(self) -> float:
        """Standard deviation of the model pulls (``ddof=1``)."""
        if self.n_bins < 2:
            return float("nan")
        return float(np.std(self.model_pulls[self.used], ddof=1))

    @property
    def chi2(self) -> float:
        """Sum of the squared pulls."""
        return float(np.sum(self._used_pulls() ** 2))

    @property
    def ratio_median(self) -> float:
        """Median of the rate ratio over the bins used for the pulls (else all finite bins)."""
        values = self.ratio[self.used] if self.n_bins else self.ratio[np.isfinite(self.ratio)]
        return float(np.median(values)) if values.size else float("nan")

    def summary(self) -> dict:
        """The numbers of the comparison as a plain dict (JSON-friendly)."""
        return {
            "n_bins": self.n_bins,
            "min_expected": self.min_expected,
            "pull_mean": self.pull_mean,
            "pull_mean_error": self.pull_mean_error,
            "pull_width": self.pull_width,
            "pull_width_error": self.pull_width_error,
            "chi2": self.chi2,
            "ndof": self.n_bins,
            "ratio_median": self.ratio_median,
            "model_pull_mean": self.model_pull_mean,
            "model_pull_width": self.model_pull_width,
        }

    def plot(self, filename: PathLike | None = None, **kwargs: Any) -> Figure:
        """Plot ratio images, spectra and the pull distribution (see `plot_comparison`)."""
        from .plot import plot_comparison

        return plot_comparison(self, filename=filename, **kwargs)


def _exact_solid_angle(cube):
    return str(cube.meta.get("SOLIDANG", "FLAT")).upper() == "EXACT"


def compare_models(
    reco: FOVCubeBackgroundModel,
    true: FOVCubeBackgroundModel | FOVCube,
    *,
    min_expected: float = 10.0,
) -> ModelComparison:
    """Compare a reconstructed background model with the truth.

    Parameters
    ----------
    reco : `~bgcube.FOVCubeBackgroundModel`
        Reconstructed model; its ``background_cube`` gives the ratio, its
        ``counts_cube`` and ``livetime_cube`` (when present) the pulls.
    true : `~bgcube.FOVCubeBackgroundModel` or `~bgcube.FOVCube`
        The truth (e.g. ``SimulatedDataset.true_model(obs_ids)``): a rate
        constant within its bins, flat solid angle. A model must use the same
        time convention as ``reco``.
    min_expected : float
        Bins with fewer expected counts are left out of the pulls.

    Returns
    -------
    comparison : ModelComparison

    Raises
    ------
    ValueError
        If ``reco`` has no background cube, or the time conventions differ.
    """
    reco_bg = reco.background_cube
    if reco_bg is None:
        raise ValueError("the reconstructed model has no background cube; call compute_rate first")
    true_conv = getattr(true, "time_convention", None)
    if true_conv is not None and true_conv != reco.time_convention:
        raise ValueError(
            f"time conventions differ: reconstructed {reco.time_convention}, true {true_conv}; "
            f"make the truth with time_convention={reco.time_convention!r}"
        )
    true_cube = getattr(true, "background_cube", true)
    integral, coverage = integrate_rate(true_cube, reco_bg)  # 1/s, on the reco binning
    complete = coverage > 1.0 - 1e-9

    volume = to_numpy(reco_bg.bin_volume_array(exact=_exact_solid_angle(reco_bg)))
    true_rate = integral / volume * _CORE_RATE.to(reco_bg.unit)
    reco_rate = to_numpy(reco_bg.data)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(complete & (true_rate > 0), reco_rate / true_rate, np.nan)
    true_cube_reco = FOVCube(
        reco_bg.coordx_edges,
        reco_bg.coordy_edges,
        reco_bg.energy_edges,
        data=true_rate,
        scheme="bg_cube",
        unit=reco_bg.unit,
        meta=dict(reco_bg.meta),
    )

    expected = pulls = used = model_pulls = None
    if reco.counts_cube is not None and reco.livetime_cube is not None:
        time_s = to_numpy(reco.livetime_cube.data) * reco.livetime_cube.unit.to(u.s)
        expected = integral * time_s
        counts = to_numpy(reco.counts_cube.data).astype(np.float64)
        used = complete & (expected >= float(min_expected))
        pulls = np.full(expected.shape, np.nan)
        pulls[used] = (counts[used] - expected[used]) / np.sqrt(expected[used])
        used &= np.isfinite(ratio)
        model_pulls = np.full(expected.shape, np.nan)
        model_pulls[used] = (ratio[used] - 1.0) * np.sqrt(expected[used])
    return ModelComparison(
        reco=reco,
        true_rate=true_cube_reco,
        ratio=ratio,
        coverage=coverage,
        expected=expected,
        pulls=pulls,
        used=used,
        min_expected=float(min_expected),
        model_pulls=model_pulls,
    )
