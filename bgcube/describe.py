"""A short text description of a FITS file (``bgcube info``).

Every HDU is listed (name, HDUCLAS keywords, table rows or image shape), so a
DL3 or IRF file shows what it holds; the background model is the HDU that
`bgcube.FOVCube.read` reads (`bgcube.io.files.find_background_hdu`), and it
and every other cube or BKG_2D table are described in full: axes, unit,
totals, time convention and provenance.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from .cube import FOVCube
from .io.bkg2d import is_bkg_2d_hdu, read_bkg_2d
from .io.files import cube_from_hdulist, find_background_hdu
from .io.fits import open_fits
from .io.image import is_cube_image
from .make.gammapy_alignment import gammapy_forced_alignment
from .radial import RadialBackground

__all__ = ["describe_file"]

#: What a file without a background model is said to lack.
NO_BACKGROUND = (
    "no background model in this file (no HDU with HDUCLAS4='BKG_3D' or HDUCLAS2='BKG', "
    "none named BKG or BACKGROUND)"
)


def describe_file(filename) -> str:
    """Describe ``filename``: every HDU, its background model and every cube in it.

    Parameters
    ----------
    filename : str or path
        A FITS file: a bgcube model or cube file (table or image format), a
        GADF DL3 run or IRF file, an original Gammapy FOVCube file, a joint
        model file.

    Returns
    -------
    text : str

    Raises
    ------
    FileFormatError
        If the file does not exist or cannot be opened as FITS, or a cube or
        BKG_2D table in it cannot be read.
    """
    path = Path(filename)
    lines = [f"{path}"]
    with open_fits(path, memmap=False) as hdulist:
        if hdulist[0].header.get("BGMODEL") == "JOINT":
            return "\n".join(lines + _describe_joint(path))
        lines += [_hdu_line(index, hdu) for index, hdu in enumerate(hdulist)]
        if is_cube_image(hdulist):
            cube = cube_from_hdulist(hdulist, format="image", filename=str(path), cls=FOVCube)
            is_rate = cube.unit.is_equivalent(u.Unit("1 / (MeV s sr)"))
            lines.append(
                "  background model: the image in HDU PRIMARY (FOVCube.read(..., format='image'))"
                if is_rate
                else f"  {NO_BACKGROUND}"
            )
            lines.append(_describe_cube("PRIMARY (image format)", cube))
            lines += _describe_keywords("PRIMARY", hdulist[0].header, hdulist[0].header)
            return "\n".join(lines)
        lines.append(_background_line(find_background_hdu(hdulist)))
        for index, hdu in enumerate(hdulist):
            name = hdu.name or f"#{index}"
            if is_bkg_2d_hdu(hdu):
                lines.append(
                    _describe_radial(name, read_bkg_2d(path, hdu=index, cls=RadialBackground))
                )
            elif isinstance(hdu, fits.BinTableHDU) and _is_cube_table(hdu):
                cube = cube_from_hdulist(
                    hdulist, format="table", hdu=index, filename=str(path), cls=FOVCube
                )
                lines.append(_describe_cube(name, cube))
            else:
                continue
            lines += _describe_keywords(name, hdu.header, hdulist[0].header)
            lines += _gammapy_alignment_note(hdulist, hdu.header, hdulist[0].header)
    return "\n".join(lines)


def _gammapy_alignment_note(hdulist, header, primary) -> list[str]:
    """A line where Gammapy's DataStore overrides the cube's alignment for the file's run."""
    if "EVENTS" not in hdulist:
        return []
    forced = gammapy_forced_alignment(hdulist["EVENTS"].header)
    alignment = str(header.get("FOVALIGN", primary.get("FOVALIGN", "RADEC"))).upper()
    if forced is None or forced == alignment:
        return []
    return [
        f"    Gammapy's DataStore attaches it to this H.E.S.S. run as {forced} "
        f"whatever FOVALIGN says (as for every run written by SASH): mirrored in DETX "
        f"against reading it as {alignment}"
    ]


def _hdu_line(index, hdu) -> str:
    """One HDU: its name, what it holds (rows and columns, image shape) and HDUCLAS keywords."""
    header = hdu.header
    if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
        rows, columns = header.get("NAXIS2", 0), header.get("TFIELDS", 0)
        what = f"table, {rows} row{'s' * (rows != 1)}, {columns} column{'s' * (columns != 1)}"
    elif header.get("NAXIS", 0):
        naxis = header["NAXIS"]
        what = f"image {tuple(header.get(f'NAXIS{i}', 0) for i in range(naxis, 0, -1))}"
    else:
        what = "header only"
    classes = [
        str(header[key]).strip()
        for key in ("HDUCLAS1", "HDUCLAS2", "HDUCLAS3", "HDUCLAS4")
        if str(header.get(key, "")).strip()
    ]
    if classes:
        what += f"; HDUCLAS {'/'.join(classes)}"
    return f"  HDU {index} {hdu.name or '(no name)'}: {what}"


def _background_line(hdu) -> str:
    """Which HDU holds the background model, as `bgcube.FOVCube.read` finds it."""
    if hdu is None:
        return f"  {NO_BACKGROUND}"
    if is_bkg_2d_hdu(hdu) and not _is_cube_table(hdu):
        return f"  background model: HDU {hdu.name}, a BKG_2D (RadialBackground.read reads it)"
    if isinstance(hdu, fits.BinTableHDU) and _is_cube_table(hdu):
        return f"  background model: HDU {hdu.name} (FOVCube.read reads it)"
    return (
        f"  background model: HDU {hdu.name}, in a form bgcube does not read "
        "(neither a BKG_3D nor a BKG_2D table)"
    )


def _describe_joint(path) -> list[str]:
    """A joint model file: conditions with their ranges, the fit report, the runs."""
    import numpy as np

    from .fit.joint import JointBackgroundModel

    model = JointBackgroundModel.read(path)
    meta = model.meta
    lines = [
        f"  joint background model (bgcube {meta.get('BGCVERS', '?')}, {meta.get('DATE', '')})"
    ]
    for kind, conditions in (
        ("spectrum", model.conditions),
        ("field-of-view shape", model.spatial_conditions),
    ):
        names = [
            f"{c.name} (fitted range {model.validity.get(c.column, ('?', '?'))[0]:.4g}"
            f"-{model.validity.get(c.column, ('?', '?'))[1]:.4g})"
            if c.column in model.validity
            else c.name
            for c in conditions
        ]
        lines.append(f"  {kind} depends on: {', '.join(names) or 'nothing'}")
    if "SAFE_ENERGY_LO" in model.validity:
        lo, hi = model.validity["SAFE_ENERGY_LO"]
        lines.append(f"  safe energy thresholds of the fitted runs: {lo:.3g}-{hi:.3g} TeV")
    lines.append(
        f"  fit: {meta.get('REASON', '?')}, {meta.get('NITER', '?')} iterations, "
        f"backend {meta.get('BACKEND', '?')}"
    )
    if model.runs is not None:
        runs = model.runs
        effect = np.exp(np.asarray(runs["NIGHT_EFFECT"], dtype=float))
        lines.append(
            f"  runs: {len(runs)} ({int(np.sum(runs['FITTED']))} fitted), "
            f"{len(set(np.asarray(runs['NIGHT']).tolist()))} nights; night norms "
            f"{effect.min():.3f}-{effect.max():.3f} (sigma {model.spec.night_sigma:g}), "
            f"run-to-run scatter {model.spec.run_sigma:g}"
        )
    lines.append(
        f"  per-run cubes: {model.spec.energy_edges().size - 1} energy bins "
        f"{model.spec.energy_range[0]:g}-{model.spec.energy_range[1]:g} TeV, "
        f"{model.spec.fov_edges(model.spec.output_pixel).size - 1}^2 pixels of "
        f"{model.spec.output_pixel:g} deg (BKG_3D files in bkg/)"
    )
    return lines


def _is_cube_table(hdu) -> bool:
    names = {n.upper() for n in hdu.columns.names}
    return {"ENERG_LO", "ENERG_HI"} <= names and any(n.startswith("DETX") for n in names)


def _describe_cube(name, cube) -> str:
    data = cube.quantity
    e, x, y = cube.energy_edges, cube.coordx_edges, cube.coordy_edges
    finite = np.isfinite(data.value)
    return (
        f"  HDU {name}: cube (energy, DETY, DETX) = {cube.shape}, unit '{cube.unit}'\n"
        f"    energy {e[0]:.4g} - {e[-1]:.4g} ({cube.energy_axis.binning.kind}), "
        f"DETX {x[0].to_value('deg'):.3f} - {x[-1].to_value('deg'):.3f} deg, "
        f"DETY {y[0].to_value('deg'):.3f} - {y[-1].to_value('deg'):.3f} deg\n"
        f"    sum {data.value[finite].sum():.6g}, max {data.value[finite].max(initial=0):.6g}, "
        f"zero bins {int(np.count_nonzero(data.value == 0))}"
    )


def _describe_radial(name, model) -> str:
    data = model.data
    finite = np.isfinite(data)
    e, o = model.energy_edges, model.offset_edges
    return (
        f"  HDU {name}: BKG_2D (energy, offset) = {model.shape}, unit '{model.unit}'\n"
        f"    energy {e[0]:.4g} - {e[-1]:.4g}, offset {o[0].value:.3f} - {o[-1].value:.3f} deg\n"
        f"    sum {data[finite].sum():.6g}, max {data[finite].max(initial=0):.6g}, "
        f"zero bins {int(np.count_nonzero(data == 0))}"
    )


#: Keywords that say where a file comes from, shown when present (HDU, else primary header).
PROVENANCE_KEYWORDS = (
    "CREATOR",
    "ORIGIN",
    "DATE",
    "TELESCOP",
    "INSTRUME",
    "HDUCLASS",
    "HDUCLAS4",
    "HDUVERS",
    "BGLAYOUT",
    "SOLIDANG",
    "SELIDS",
    "SELEXCL",
    "SELEXPR",
)

_TIME_MEANING = {
    "ONTIME": "rate x ONTIME x bin volume = predicted counts (as Gammapy predicts background)",
    "LIVETIME": "rate x LIVETIME x bin volume = predicted counts (the original FOVCube's convention)",
}


def _describe_keywords(name, header, primary) -> list[str]:
    """Lines on the time convention, norm, run, alignment and provenance of a cube HDU."""
    lines = []
    time = header.get("BKG_TIME")
    if name.upper() == "LIVETIME":
        held = time or "LIVETIME (no BKG_TIME keyword: the original convention)"
        lines.append(
            f"    holds the observation time per bin: {held}; "
            "the HDU keeps the original name LIVETIME whatever the time"
        )
    elif time:
        lines.append(
            f"    time convention BKG_TIME={time}: "
            f"{_TIME_MEANING.get(str(time).upper(), 'unknown convention')}"
        )
    run = []
    for key, label in (
        ("OBS_ID", "run"),
        ("BKG_GRP", "group"),
        ("BKG_NORM", "norm"),
        ("BKG_EFF", "optical efficiency"),
    ):
        if key in header:
            value = header[key]
            text = f"{value:.6g}" if isinstance(value, float) else f"{value}"
            run.append(f"{label} {key}={text}")
    if "BKG_NORM" in header:
        run.append("the norm is applied to the data")
    if run:
        lines.append("    " + ", ".join(run))
    alignment = header.get("FOVALIGN", primary.get("FOVALIGN"))
    lines.append(
        f"    alignment FOVALIGN={alignment}"
        if alignment
        else "    alignment: no FOVALIGN keyword (read as RADEC, as Gammapy does)"
    )
    if str(alignment).upper() == "REVERSE_LON_RADEC":
        lines[-1] += (
            " (DETX is fov_lon without Gammapy's RADEC sign flip, as Gammapy forces "
            "for H.E.S.S. SASH runs; a tool ignoring FOVALIGN reads it mirrored)"
        )
    found = [
        f"{k}={header.get(k, primary.get(k))}"
        for k in PROVENANCE_KEYWORDS
        if k in header or k in primary
    ]
    lines.append("    provenance: " + (", ".join(found) if found else "no keywords recorded"))
    return lines
