"""Files an earlier bgcube build left in an output folder, removed once a new build is done.

A build with ``overwrite=True`` replaces the files it writes; the files an
earlier build wrote there and this one does not (the per-run files of runs
no longer selected, the joint model after a build of group models, an
hdu-index left by per-run models no longer asked for, ...) would stay and be
read by Gammapy's ``DataStore.from_dir`` and by ``bgcube apply-models`` as
if they were part of the new build. `EarlierOutputs` finds them before the
build and removes them after it has written everything, so that a build
that fails loses nothing and a finished one leaves its folder holding its
own outputs only. A resumed build (``resume=True``) does the same, without
``overwrite``, for the files the interrupted build had planned (the names
its checkpoint lists).

Only files bgcube itself writes are ever removed, recognised by their
names (`is_bgcube_output`):

* ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` where the HDU index is
  bgcube's (header keyword BGPATHS: a data store's own indexes are kept),
  ``bkg/bkg_obs_<OBS_ID>.fits.gz``;
* ``bg_joint_model.fits.gz``; ``bg_observation_table.fits.gz``,
  ``bg_observation_table_grouped.fits.gz``, ``bg_observation_groups.ecsv``,
  ``bg_exclusion_regions.ecsv``; per group ``bg_cube_model_group<ID>_table.fits.gz``,
  ``bg_cube_model_group<ID>_image.fits.gz`` and ``bg_2d_model_group<ID>.fits.gz``;
* the input files copied or linked into ``data/`` (``input_paths`` 'copy'
  or 'link') that the folder's earlier hdu-index, written by bgcube (header
  keyword BGPATHS), lists there;
* ``bgcube-config.yaml`` only where asked (``apply-models``): a make-models
  build reads its configuration from there and writes it anew.

Any other file of the folder is left as it is.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from ..data.store import HDU_INDEX, OBS_INDEX
from .config import CONFIG_NAME
from .gammapy_index import BKG_SUBDIR
from .output_paths import COPY_SUBDIR
from .radial_models import RADIAL_MODEL_NAME
from .results import OUTPUT_NAMES

__all__ = ["EarlierOutputs", "is_bgcube_output", "earlier_outputs"]


def _pattern(template: str) -> str:
    """A file-name template (``{group_id}``) as a regular expression."""
    return re.escape(template).replace(re.escape("{group_id}"), r"\d+")


#: ``bgcube.fit.joint.JOINT_MODEL_FILE`` (not imported: a group build loads no joint fit).
JOINT_MODEL_FILE = "bg_joint_model.fits.gz"
#: Names of the files bgcube writes at the top of an output folder.
_TOP_LEVEL = re.compile(
    "|".join(
        _pattern(name)
        for name in (
            HDU_INDEX,
            OBS_INDEX,
            JOINT_MODEL_FILE,
            RADIAL_MODEL_NAME,
            *OUTPUT_NAMES.values(),
        )
    )
)
#: Names of the per-run files in ``OUTDIR/bkg``.
_PER_RUN = re.compile(r"bkg_obs_\d+\.fits\.gz")


def is_bgcube_output(path, outdir, *, config=False) -> bool:
    """Whether a file of ``outdir`` has the name of a file bgcube writes there.

    Parameters
    ----------
    path : str or path
        A file inside ``outdir``.
    outdir : str or path
        The output folder.
    config : bool
        Count ``bgcube-config.yaml`` as one.
    """
    relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(outdir))).parts
    if len(relative) == 1:
        name = relative[0]
        return bool(_TOP_LEVEL.fullmatch(name)) or (config and name == CONFIG_NAME)
    return (
        len(relative) == 2 and relative[0] == BKG_SUBDIR and bool(_PER_RUN.fullmatch(relative[1]))
    )


def _listed_copies(outdir: Path) -> list[Path]:
    """Files under ``outdir/data`` that a bgcube hdu-index of ``outdir`` lists (copied inputs)."""
    index = outdir / HDU_INDEX
    if not index.is_file():
        return []
    from astropy.table import Table

    try:
        table = Table.read(index, hdu=1)
    except (OSError, ValueError, TypeError):  # not readable: nothing is known to be ours
        return []
    if "BGPATHS" not in table.meta or not {"FILE_DIR", "FILE_NAME"} <= set(table.colnames):
        return []
    copies = Path(os.path.abspath(outdir / COPY_SUBDIR))
    out = []
    for file_dir, file_name in zip(table["FILE_DIR"], table["FILE_NAME"], strict=True):
        path = Path(os.path.abspath(outdir / str(file_dir).strip() / str(file_name).strip()))
        if copies in path.parents:
            out.append(path)
    return out


def earlier_outputs(outdir, *, config=False) -> set[Path]:
    """The files of ``outdir`` that bgcube writes (see the module docstring), as absolute paths."""
    outdir = Path(os.path.abspath(outdir))
    if not outdir.is_dir():
        return set()
    found = set()
    candidates = list(outdir.iterdir())
    if (outdir / BKG_SUBDIR).is_dir():
        candidates += list((outdir / BKG_SUBDIR).iterdir())
    for path in candidates:
        if (path.is_file() or path.is_symlink()) and is_bgcube_output(path, outdir, config=config):
            found.add(path)
    if not _bgcube_hdu_index(outdir / HDU_INDEX):
        # a data store's own indexes (no BGPATHS: not written by bgcube) are never removed
        found -= {outdir / HDU_INDEX, outdir / OBS_INDEX}
    found.update(p for p in _listed_copies(outdir) if p.is_file() or p.is_symlink())
    return found


def _bgcube_hdu_index(path: Path) -> bool:
    """Whether ``path`` is an HDU index bgcube wrote (its header has BGPATHS)."""
    if not path.is_file():
        return False
    from ..io.lean_fits import read_header

    header = read_header(path, 1)
    if header is None:  # unusual or damaged: astropy reads it, or nothing is known to be ours
        from astropy.io import fits

        try:
            header = fits.getheader(path, 1)
        except (OSError, ValueError, IndexError, KeyError, TypeError):
            return False
    return "BGPATHS" in header


class EarlierOutputs:
    """The bgcube outputs found in a folder before a build; `remove` those it did not write.

    Parameters
    ----------
    outdir : str or path
        The output folder.
    overwrite : bool
        The build replaces earlier outputs; without it nothing is looked for
        or removed (the build refuses the files it would replace).
    config : bool
        Count ``bgcube-config.yaml`` as an output (``apply-models``, which
        never writes one).
    interrupted : iterable of str
        Without ``overwrite``: the names of the files planned by the
        interrupted build a resumed build continues
        (`bgcube.make.checkpoint.planned_outputs`); those of bgcube's files
        found that have one of these names are removed if this build does
        not write them (a joint build resumed as a group build, say).
    """

    def __init__(self, outdir, overwrite: bool, *, config: bool = False, interrupted=()):
        self.outdir = Path(os.path.abspath(outdir))
        interrupted = set(interrupted)
        self.of_interrupted = not overwrite and bool(interrupted)
        self.found = set()
        if overwrite or interrupted:
            self.found = earlier_outputs(outdir, config=config)
        if not overwrite:
            self.found = {p for p in self.found if p.name in interrupted}

    def remove(self, written) -> tuple[list[Path], str | None]:
        """Remove the files found before that are not among ``written``.

        Called once the build has written all its files. Folders (``bkg/``,
        ``data/...``) left empty by the removal are removed too.

        Parameters
        ----------
        written : iterable of str or path
            Every file the build wrote.

        Returns
        -------
        removed : list of `~pathlib.Path`
        message : str or None
            One line for the report, e.g. ``'removed 95 file(s) of an earlier
            build (95 in bkg/)'``; None when nothing was removed.
        """
        kept = {Path(os.path.abspath(p)) for p in written}
        removed = []
        for path in sorted(self.found - kept):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        for folder in sorted({p.parent for p in removed}, key=lambda p: -len(p.parts)):
            while folder != self.outdir and self.outdir in folder.parents:
                try:
                    folder.rmdir()  # only if empty
                except OSError:
                    break
                folder = folder.parent
        if not removed:
            return removed, None
        folders = {}
        for path in removed:
            part = path.relative_to(self.outdir).parts
            key = f"{part[0]}/" if len(part) > 1 else "."
            folders[key] = folders.get(key, 0) + 1
        where = ", ".join(
            f"{n} in {key}" if key != "." else f"{n} in the folder itself"
            for key, n in sorted(folders.items())
        )
        which = "the interrupted build" if self.of_interrupted else "an earlier build"
        return removed, (
            f"removed {len(removed)} file(s) of {which} that this build does not write ({where})"
        )
