"""The joint background model: one smooth rate fitted to all runs at once.

The background rate of a run, in 1/(TeV s sr) per unit ONTIME, is

    log rate(E, x, y | run) = sum_q f_q(run) A_q(log E)            (spectrum)
                            + sum_m u_m(run) S_m(log E, x, y)       (field-of-view shape)
                            + delta(run)                            (night effect, optional)
                            + eps(run)                              (run effect, in the fit only)

* ``f_q`` are polynomials in the run's conditions (by default cos(zenith) to
  second order and log(optical efficiency) to second order), ``A_q`` cubic
  B-splines in log10(E) over 0.1-100 TeV: the spectrum, its threshold
  turn-over and how both move with the conditions;
* ``u_m`` (by default 1 and cos(zenith)) multiply the field-of-view shape
  ``S_m``: B-splines in offset from the centre (zero at the centre) plus
  linear gradients in DETX and DETY, each with coefficients that are
  B-splines in log10(E) (so the radial profile widens with energy and
  changes with zenith);
* ``delta`` is an optional effect shared by the runs of one night (runs less
  than ``night_gap`` apart), with a Gaussian prior: what the other runs of
  the night say about the atmosphere. A run's own ``delta`` is always
  estimated *without* its own counts (`bgcube.fit.joint_groups.group_effects`);
* ``eps`` is each fitted run's own effect: the run-to-run scatter that no
  condition explains, with a prior of width ``run_sigma`` that is Gaussian
  out to ``run_tail * run_sigma`` and exponential beyond (Huber's). It
  exists only in the fit, where it keeps a single run's tens of thousands
  of counts from weighing in the condition dependence and its night's
  effect more than that scatter allows (a hierarchical model: runs within
  nights within conditions), gives the condition dependence an uncertainty
  that includes that scatter, and, with the exponential tails, sets the
  model's level at the typical run rather than letting a few runs far off
  pull it. Predictions never use it.

Smoothness penalties (second differences of the B-spline coefficients)
keep the model defined where data are sparse: below all thresholds and at
the highest energies it continues the fitted spectrum as a straight line in
log-log. The fit (`bgcube.fit.joint_solver.fit_joint`) is a convex,
penalised Poisson likelihood over the counts of every run in every
(energy, DETX, DETY) bin above the run's safe energy threshold, with the
run's observation time times each pixel's fraction outside the exclusion
regions as exposure.

`JointBackgroundModel` holds a fitted model: `background` gives a run's
rate cube (a `~bgcube.FOVCube`), `write` / `read` store it as FITS
(``bg_joint_model.fits.gz``: coefficients, covariance, the conditions and
their scaling, the fitted runs, provenance).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from .._types import ArrayLike, PathLike
from ..cube import FOVCube
from ..errors import FileFormatError
from .joint_basis import bspline_basis, clamped_knots, difference_penalty
from .joint_conditions import (
    DEFAULT_CONDITIONS,
    DEFAULT_SPATIAL_CONDITIONS,
    Condition,
    parse_condition,
    run_features,
)
from .joint_solver import JointDesign

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = [
    "Condition",
    "JointModelSpec",
    "JointBackgroundModel",
    "DEFAULT_CONDITIONS",
    "DEFAULT_SPATIAL_CONDITIONS",
    "parse_condition",
    "JOINT_MODEL_FILE",
]

#: File name of the fitted joint model in a make-models output folder.
JOINT_MODEL_FILE = "bg_joint_model.fits.gz"


@dataclass(frozen=True)
class JointModelSpec:
    """The family of the joint model: bases, their ranges, penalties, fit binning.

    Energies in TeV, angles in deg. The defaults are those validated on the
    H.E.S.S. DL3 DR1 (see the validation page of the documentation).
    """

    energy_range: tuple = (0.1, 100.0)
    energy_step_dex: float = 0.1
    fov_half_width: float = 2.5
    fit_pixel: float = 0.2
    output_pixel: float = 0.1
    n_energy_basis: int = 12
    n_spatial_energy_basis: int = 6
    n_radial_basis: int = 8
    radial_max: float = 3.6
    gradients: bool = True
    penalty_energy: float = 1.0
    penalty_conditions: float = 1e4
    penalty_spatial_energy: float = 1.0
    penalty_radial: float = 1.0
    night_gap_hours: float = 6.0
    night_sigma: float = 0.1
    run_sigma: float = 0.07
    run_tail: float = 0.5

    # ------------------------------------------------------------------
    def energy_edges(self) -> np.ndarray:
        """Energy bin edges of the fit and of the written cubes, TeV."""
        lo, hi = (float(e) for e in self.energy_range)
        n = int(round(math.log10(hi / lo) / self.energy_step_dex))
        return lo * 10 ** (np.arange(n + 1) * (math.log10(hi / lo) / n))

    def fov_edges(self, pixel: float) -> np.ndarray:
        """DETX = DETY edges over +-fov_half_width with this pixel size, deg."""
        n = int(round(2 * self.fov_half_width / pixel))
        return np.linspace(-self.fov_half_width, self.fov_half_width, n + 1)

    def energy_basis(self, log_energy) -> np.ndarray:
        lo, hi = (math.log10(float(e)) for e in self.energy_range)
        return bspline_basis(log_energy, clamped_knots(lo, hi, self.n_energy_basis))

    def spatial_energy_basis(self, log_energy) -> np.ndarray:
        lo, hi = (math.log10(float(e)) for e in self.energy_range)
        return bspline_basis(log_energy, clamped_knots(lo, hi, self.n_spatial_energy_basis))

    def spatial_basis(self, detx, dety) -> np.ndarray:
        """Field-of-view basis at points, shape ``(n_points, J)``: radial splines, gradients."""
        detx, dety = np.ravel(detx), np.ravel(dety)
        offset = np.hypot(detx, dety)
        radial = bspline_basis(offset, clamped_knots(0.0, self.radial_max, self.n_radial_basis))
        parts = [radial[:, 1:]]  # the first spline is the only one non-zero at the centre
        if self.gradients:
            parts += [detx[:, None], dety[:, None]]
        return np.concatenate(parts, axis=1)

    @property
    def n_radial_terms(self) -> int:
        return self.n_radial_basis - 1

    def design(self, log_energy, detx, dety, n_features: int, n_spatial_features: int):
        """The `~bgcube.fit.joint_solver.JointDesign` (NumPy) on these bin centres."""
        be = self.energy_basis(log_energy)
        bs = self.spatial_energy_basis(log_energy)
        g = self.spatial_basis(detx, dety)
        k, j = be.shape[1], g.shape[1]
        lam = np.full(n_features, self.penalty_conditions)
        lam[0] = self.penalty_energy
        penalty_a = np.kron(np.diag(lam), difference_penalty(k))
        penalty_s = (
            np.kron(difference_penalty(bs.shape[1]), np.eye(j)) * self.penalty_spatial_energy
        )
        radial = np.zeros((j, j))
        nr = self.n_radial_terms
        radial[:nr, :nr] = difference_penalty(nr) * self.penalty_radial
        penalty_s = penalty_s + np.kron(np.eye(bs.shape[1]), radial)
        penalty_s = np.kron(np.eye(n_spatial_features), penalty_s)
        return JointDesign(be, bs, g, penalty_a, penalty_s)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["energy_range"] = [float(e) for e in self.energy_range]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> JointModelSpec:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("run_sigma", 0.0)  # written before the model had run effects
        if "energy_range" in kwargs:
            kwargs["energy_range"] = tuple(kwargs["energy_range"])
        return cls(**kwargs)


@dataclass
class JointBackgroundModel:
    """A fitted joint background model (see the module docstring).

    Attributes
    ----------
    spec : JointModelSpec
    conditions, spatial_conditions : tuple of Condition
        Fitted conditions (centre and scale set).
    coef_a : numpy.ndarray, shape (1 + n condition features, n_energy_basis)
    coef_s : numpy.ndarray, shape (1 + n spatial features, n_spatial_energy_basis, J)
    covariance : numpy.ndarray
        Covariance of ``(coef_a, coef_s)`` flattened (night effects marginalised).
    runs : `~astropy.table.Table`
        One row per run of the build: OBS_ID, FITTED (used in the fit),
        NIGHT, N_COUNTS, N_PREDICTED (fit bins, without night effect),
        NIGHT_EFFECT (natural log, estimated without the run's own counts),
        RUN_EFFECT (natural log, in-sample, NaN for runs not fitted: a
        diagnostic of unusual runs, never used in predictions).
    validity : dict of str to (float, float)
        Range of each condition column over the fitted runs.
    meta : dict
        Provenance and fit report (CONVERGED, REASON, N_ITER, ...).
    """

    spec: JointModelSpec
    conditions: tuple
    spatial_conditions: tuple
    coef_a: np.ndarray
    coef_s: np.ndarray
    covariance: np.ndarray
    runs: object = None
    validity: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __repr__(self):
        conds = ", ".join(c.name for c in self.conditions)
        spatial = ", ".join(c.name for c in self.spatial_conditions) or "none"
        n = 0 if self.runs is None else int(np.sum(np.asarray(self.runs["FITTED"])))
        return (
            f"JointBackgroundModel(conditions=[{conds}], spatial conditions=[{spatial}], "
            f"fitted runs={n}, night_sigma={self.spec.night_sigma}, "
            f"run_sigma={self.spec.run_sigma}, "
            f"converged={self.meta.get('CONVERGE')})"
        )

    # ------------------------------------------------------------------
    def log_rate(
        self,
        row: Mapping[str, Any],
        log_energy: ArrayLike,
        detx: ArrayLike,
        dety: ArrayLike,
        night_effect: float = 0.0,
    ) -> np.ndarray:
        """Natural log of the rate in 1/(TeV s sr), shape ``(n_energy, n_points)``.

        Parameters
        ----------
        row : `~astropy.table.Row` or mapping
            The run's observation-index row (its condition columns).
        log_energy : array_like
            log10 of energies, TeV.
        detx, dety : array_like
            Field-of-view points, deg (same shape).
        night_effect : float
            Natural-log offset of the run (e.g. ``runs['NIGHT_EFFECT']``).
        """
        f = run_features(self.conditions, row)[0]
        uvec = run_features(self.spatial_conditions, row)[0]
        log_energy = np.atleast_1d(np.asarray(log_energy, dtype=np.float64))
        a = self.spec.energy_basis(log_energy) @ (f @ self.coef_a)  # (E,)
        bs = self.spec.spatial_energy_basis(log_energy)
        g = self.spec.spatial_basis(detx, dety)
        shape = np.tensordot(uvec, self.coef_s, axes=1)  # (L, J)
        s = bs @ shape @ g.T
        return a[:, None] + s + float(night_effect)

    def gradient(
        self, row: Mapping[str, Any], log_energy: ArrayLike, detx: ArrayLike, dety: ArrayLike
    ) -> np.ndarray:
        """Derivative of `log_rate` with respect to ``(coef_a, coef_s)`` flattened.

        Returns
        -------
        gradient : numpy.ndarray, shape (n_energy * n_points, n_parameters)
            Rows in the order of ``log_rate(...).ravel()``.
        """
        f = run_features(self.conditions, row)[0]
        uvec = run_features(self.spatial_conditions, row)[0]
        log_energy = np.atleast_1d(np.asarray(log_energy, dtype=np.float64))
        be = self.spec.energy_basis(log_energy)
        bs = self.spec.spatial_energy_basis(log_energy)
        g = self.spec.spatial_basis(detx, dety)
        n_e, n_p = log_energy.size, g.shape[0]
        da = np.einsum("q,ek->eqk", f, be).reshape(n_e, 1, -1)
        da = np.broadcast_to(da, (n_e, n_p, da.shape[-1]))
        ds = np.einsum("m,el,pj->epmlj", uvec, bs, g).reshape(n_e, n_p, -1)
        return np.concatenate([da, ds], axis=2).reshape(n_e * n_p, -1)

    def log_rate_error(
        self, row: Mapping[str, Any], log_energy: ArrayLike, detx: ArrayLike, dety: ArrayLike
    ) -> np.ndarray:
        """Statistical 1-sigma error of `log_rate` (from the fit's covariance), same shape."""
        grad = self.gradient(row, log_energy, detx, dety)
        var = np.einsum("ij,jk,ik->i", grad, self.covariance, grad)
        n_e = np.atleast_1d(log_energy).size
        return np.sqrt(np.clip(var, 0.0, None)).reshape(n_e, -1)

    def log_rate_difference_error(
        self,
        row: Mapping[str, Any],
        other: Mapping[str, Any],
        log_energy: float,
        detx: float,
        dety: float,
    ) -> float:
        """Statistical 1-sigma error of ``log_rate(row) - log_rate(other)`` at one point.

        The condition dependence of the model, with its uncertainty: e.g. the
        change of the rate between two zenith angles at one energy.
        """
        d = (
            self.gradient(row, [log_energy], [detx], [dety])
            - self.gradient(other, [log_energy], [detx], [dety])
        )[0]
        return float(np.sqrt(max(d @ self.covariance @ d, 0.0)))

    def background(
        self,
        row: Mapping[str, Any],
        *,
        night_effect: float | None = None,
        energy_edges: ArrayLike | None = None,
        fov_edges: ArrayLike | None = None,
    ) -> FOVCube:
        """The background rate cube of one run, per unit ONTIME.

        Parameters
        ----------
        row : `~astropy.table.Row` or mapping
            The run's observation-index row.
        night_effect : float, optional
            Natural-log offset; default: the run's ``NIGHT_EFFECT`` in
            `runs` when the model was built with it, else 0.
        energy_edges : `~astropy.units.Quantity`, optional
            Default: the spec's energy grid (0.1 dex over 0.1-100 TeV).
        fov_edges : `~astropy.coordinates.Angle`, optional
            DETX = DETY edges; default +-fov_half_width in output_pixel steps.

        Returns
        -------
        cube : `~bgcube.FOVCube`
            Scheme ``bg_cube``, 1/(MeV s sr), FOVALIGN RADEC, BKG_TIME ONTIME.
        """
        e = (
            self.spec.energy_edges()
            if energy_edges is None
            else u.Quantity(energy_edges, u.TeV).to_value(u.TeV)
        )
        xy = (
            self.spec.fov_edges(self.spec.output_pixel)
            if fov_edges is None
            else u.Quantity(fov_edges, u.deg).to_value(u.deg)
        )
        if night_effect is None:
            night_effect = self.night_effect_of(row)
        centres = 0.5 * (xy[1:] + xy[:-1])
        gx, gy = np.meshgrid(centres, centres)
        log_e = 0.5 * (np.log10(e[1:]) + np.log10(e[:-1]))
        rate = np.exp(self.log_rate(row, log_e, gx.ravel(), gy.ravel(), night_effect))
        data = rate.reshape(log_e.size, centres.size, centres.size) * 1e-6  # 1/TeV -> 1/MeV
        cube = FOVCube(
            coordx_edges=xy * u.deg,
            coordy_edges=xy * u.deg,
            energy_edges=e * u.TeV,
            data=data * u.Unit("1 / (MeV s sr)"),
            scheme="bg_cube",
        )
        cube.meta.update(
            FOVALIGN="RADEC", BKG_TIME="ONTIME", BKG_MODEL="JOINT", BKG_NGHT=float(night_effect)
        )
        obs_id = _row_get(row, "OBS_ID")
        if obs_id is not None:
            cube.meta["OBS_ID"] = int(obs_id)
        return cube

    def night_effect_of(self, row: Mapping[str, Any]) -> float:
        """The run's night effect stored in `runs` (0 for a run not in the build)."""
        obs_id = _row_get(row, "OBS_ID")
        if self.runs is None or obs_id is None:
            return 0.0
        hit = np.flatnonzero(np.asarray(self.runs["OBS_ID"]) == int(obs_id))
        return float(self.runs["NIGHT_EFFECT"][hit[0]]) if hit.size else 0.0

    # ------------------------------------------------------------------
    def to_hdulist(self) -> fits.HDUList:
        """The model as an `~astropy.io.fits.HDUList` (see `write`)."""
        from astropy.io import fits
        from astropy.table import Table

        primary = fits.PrimaryHDU()
        primary.header["BGMODEL"] = ("JOINT", "bgcube joint background model")
        for key, value in self.meta.items():
            if isinstance(value, bool | int | float | str) and len(str(key)) <= 8:
                primary.header[str(key).upper()] = value
        spec = Table(
            {
                "KEY": list(self.spec.to_dict()),
                "VALUE": [json.dumps(v) for v in self.spec.to_dict().values()],
            }
        )
        rows = []
        for kind, conds in (("SPECTRAL", self.conditions), ("SPATIAL", self.spatial_conditions)):
            for c in conds:
                lo, hi = self.validity.get(c.column, (math.nan, math.nan))
                rows.append((kind, c.column, c.transform, int(c.degree), c.centre, c.scale, lo, hi))
        names = ("KIND", "COLUMN", "TRANSFORM", "DEGREE", "CENTRE", "SCALE", "MIN", "MAX")
        conditions = Table(rows=rows, names=names) if rows else Table(names=names)
        hdus = [
            primary,
            fits.table_to_hdu(spec),
            fits.table_to_hdu(conditions),
            fits.ImageHDU(np.asarray(self.coef_a, dtype=np.float64), name="COEF_A"),
            fits.ImageHDU(np.asarray(self.coef_s, dtype=np.float64), name="COEF_S"),
            fits.ImageHDU(np.asarray(self.covariance, dtype=np.float64), name="COVARIANCE"),
        ]
        hdus[1].name, hdus[2].name = "SPEC", "CONDITIONS"
        if self.runs is not None:
            runs = fits.table_to_hdu(Table(self.runs))
            runs.name = "RUNS"
            hdus.append(runs)
        return fits.HDUList(hdus)

    def write(self, filename: PathLike, *, overwrite: bool = False) -> None:
        """Write the model as FITS, atomically.

        HDUs: ``SPEC`` (the `JointModelSpec`, KEY/VALUE as JSON),
        ``CONDITIONS`` (column, transform, degree, centre, scale and the range
        of the fitted runs), ``COEF_A``, ``COEF_S``, ``COVARIANCE`` (images)
        and ``RUNS`` (the runs of the build); the primary header holds the
        fit report and provenance.

        Raises
        ------
        OutputExistsError
            The file exists and ``overwrite`` is false.
        """
        from ..io.files import write_hdulist

        write_hdulist(self.to_hdulist(), filename, overwrite=overwrite)

    @classmethod
    def read(cls, filename: PathLike) -> JointBackgroundModel:
        """Read a model written by `write`.

        Raises
        ------
        FileFormatError
            Not a joint model file, or an HDU or column is missing.
        """
        from astropy.table import Table

        from ..io.fits import get_hdu, open_fits

        with open_fits(filename) as hdulist:
            if hdulist[0].header.get("BGMODEL") != "JOINT":
                raise FileFormatError(
                    "not a bgcube joint model (no BGMODEL = 'JOINT' in the primary header)",
                    filename=filename,
                )
            try:
                spec_t = Table.read(get_hdu(hdulist, "SPEC", filename))
                cond_t = Table.read(get_hdu(hdulist, "CONDITIONS", filename))
                spec = JointModelSpec.from_dict(
                    {
                        str(k): json.loads(str(v))
                        for k, v in zip(spec_t["KEY"], spec_t["VALUE"], strict=True)
                    }
                )
                conds = {"SPECTRAL": [], "SPATIAL": []}
                validity = {}
                for r in cond_t:
                    c = Condition(
                        str(r["COLUMN"]),
                        str(r["TRANSFORM"]),
                        int(r["DEGREE"]),
                        float(r["CENTRE"]),
                        float(r["SCALE"]),
                    )
                    conds[str(r["KIND"]).strip()].append(c)
                    if np.isfinite(r["MIN"]):
                        validity[c.column] = (float(r["MIN"]), float(r["MAX"]))
                coef_a = _image(hdulist, "COEF_A", filename)
                coef_s = _image(hdulist, "COEF_S", filename)
                cov = _image(hdulist, "COVARIANCE", filename)
                runs = (
                    Table.read(get_hdu(hdulist, "RUNS", filename))
                    if "RUNS" in [h.name for h in hdulist]
                    else None
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise FileFormatError(
                    f"joint model file is incomplete: {exc}", filename=filename
                ) from None
            meta = {
                k: v
                for k, v in hdulist[0].header.items()
                if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "BGMODEL", "COMMENT", "")
            }
        return cls(
            spec,
            tuple(conds["SPECTRAL"]),
            tuple(conds["SPATIAL"]),
            coef_a,
            coef_s,
            cov,
            runs,
            validity,
            meta,
        )


def _image(hdulist, name, filename) -> np.ndarray:
    names = [h.name for h in hdulist]
    if name not in names:
        raise FileFormatError(f"no {name!r} image HDU (HDUs: {names})", filename=filename)
    return np.array(hdulist[name].data, dtype=np.float64)


def _row_get(row, name):
    names = list(row.colnames) if hasattr(row, "colnames") else list(row.keys())
    if name not in names:
        return None
    value = row[name]
    return None if np.ma.is_masked(value) else value
