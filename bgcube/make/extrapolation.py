"""One rule for runs outside a model's range of conditions, in make-models and apply-models.

A model is fitted to runs whose conditions (zenith angle, optical
efficiency, effective area, ... : the model's ``validity``, one closed
range per observation-index column) span some range. A run outside that
range gets the model *extrapolated*: e.g. the joint model of the H.E.S.S.
DR1, fitted to the 61 runs at |b| >= 10 deg, meets five Galactic runs of a
slightly higher MUONEFF and two of a lower zenith angle.

``bgcube make-models`` (for the runs it built from) and ``bgcube
apply-models`` (for any run) apply the same rule to the same run, with the
same ``validity`` (`~bgcube.make.model_source.Validity.reasons`, on the
ranges the model file keeps):

* by default (``extrapolate=True``) the run is written, and flagged:
  ``BKG_EXTR = T`` in its BKG_3D file, named with its reason in the report
  and, for make-models' joint model, ``EXTRAPOLATED`` in the RUNS table of
  ``bg_joint_model.fits.gz``;
* with ``extrapolate=False`` (``--no-extrapolate``) it is left out, with
  its reason.

The group models' validity is the range of all the runs they were built
from, so every run of a group build is inside it.
"""

from __future__ import annotations

__all__ = [
    "EXTRAPOLATED_KEYWORD",
    "outside_reasons",
    "flag_extrapolated",
    "report_lines",
]

#: Header keyword of a per-run file whose model is extrapolated.
EXTRAPOLATED_KEYWORD = "BKG_EXTR"
#: Per-run lines a report prints before it counts the rest.
LISTED = 20


def outside_reasons(validity, table) -> dict:
    """The runs of a table outside a model's validity, with why.

    Parameters
    ----------
    validity : `~bgcube.make.model_source.Validity`
        The model's ranges of conditions.
    table : `~astropy.table.Table`
        Observation-index rows (OBS_ID and the condition columns).

    Returns
    -------
    reasons : dict of int to str
        OBS_ID -> e.g. ``'MUONEFF = 1.213 outside the model's range [0.853, 1.189]'``,
        for the runs outside only.
    """
    out = {}
    for row in table:
        reasons = validity.reasons(row)
        if reasons:
            out[int(row["OBS_ID"])] = "; ".join(reasons)
    return out


def flag_extrapolated(cube):
    """Mark a run's cube as extrapolated (``BKG_EXTR = T`` in its file); returns it."""
    cube.meta[EXTRAPOLATED_KEYWORD] = True
    return cube


def report_lines(extrapolated, left_out) -> list[str]:
    """What a command prints (on stderr) about the runs outside the model's range.

    Parameters
    ----------
    extrapolated : sequence of (int, str)
        (OBS_ID, reason) of the runs written with the model extrapolated.
    left_out : sequence of (int, str)
        (OBS_ID, reason) of the runs left out for it (``--no-extrapolate``);
        their ``left out`` lines are printed by the command with its other
        left-out runs.

    Returns
    -------
    lines : list of str
        One line per extrapolated run (the first `LISTED`, then a count) and
        a note for each kind.
    """
    lines = [f"extrapolated OBS_ID {i}: {reason}" for i, reason in extrapolated[:LISTED]]
    if len(extrapolated) > LISTED:
        lines.append(f"... and {len(extrapolated) - LISTED} more run(s) extrapolated")
    if extrapolated:
        lines.append(
            f"note: {len(extrapolated)} run(s) written with the model extrapolated beyond the "
            f"conditions of the runs it was fitted to ({EXTRAPOLATED_KEYWORD} = T in their "
            "files); --no-extrapolate leaves them out"
        )
    if left_out:
        lines.append(
            f"note: {len(left_out)} run(s) left out for conditions outside the model's range "
            "(--no-extrapolate); without it they are written, flagged "
            f"{EXTRAPOLATED_KEYWORD} = T"
        )
    return lines
