"""FITS I/O of the joint background model (a base of `bgcube.fit.joint.JointBackgroundModel`).

One file, ``bg_joint_model.fits.gz`` in a make-models output folder: the
spec, the conditions with their scaling and fitted ranges, the coefficients
and their covariance as images, the runs of the build, and the fit report
and provenance in the primary header.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Self

import numpy as np

from .._types import PathLike
from ..errors import FileFormatError
from .joint_conditions import Condition
from .joint_spec import JointModelSpec

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = ["JointModelIO"]


class JointModelIO:
    """``to_hdulist``, ``write`` and ``read`` of `bgcube.fit.joint.JointBackgroundModel`."""

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
    def read(cls, filename: PathLike) -> Self:
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
