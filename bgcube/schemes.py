"""Naming schemes of the original Gammapy FOVCube's cubes: FITS names, plot labels and default units.

Plain data, one dict per scheme, as in the original ``FOVCube.define_scheme``.
``None`` is the generic scheme.
"""

from __future__ import annotations

__all__ = ["SCHEMES", "scheme_dict", "TIME_CONVENTIONS"]

#: Observation times a model's time cube can accumulate (written to files as BKG_TIME).
TIME_CONVENTIONS = ("ONTIME", "LIVETIME")

_DET = {
    "coordx_fits_name": "DETX",
    "coordy_fits_name": "DETY",
    "energy_fits_name": "ENERG",
    "coordx_plot_name": "DETX",
    "coordy_plot_name": "DETY",
    "energy_plot_name": "Energy",
}

SCHEMES: dict[str | None, dict[str, str]] = {
    None: {
        "hdu_fits_name": "DATA",
        "coordx_fits_name": "X",
        "coordy_fits_name": "Y",
        "energy_fits_name": "E",
        "data_fits_name": "DATA",
        "coordx_plot_name": "X",
        "coordy_plot_name": "Y",
        "energy_plot_name": "Energy",
        "data_plot_name": "Data",
        "default_unit": "",
    },
    "bg_cube": {
        **_DET,
        "hdu_fits_name": "BACKGROUND",
        "data_fits_name": "BKG",
        "data_plot_name": "Background rate",
        "default_unit": "1 / (MeV s sr)",
    },
    "bg_counts_cube": {
        **_DET,
        "hdu_fits_name": "COUNTS",
        "data_fits_name": "COUNTS",
        "data_plot_name": "Counts",
        "default_unit": "",
    },
    "bg_livetime_cube": {
        **_DET,
        "hdu_fits_name": "LIVETIME",
        "data_fits_name": "LIVETIME",
        "data_plot_name": "Observation time",
        "default_unit": "s",
    },
}


def scheme_dict(scheme: str | None) -> dict[str, str]:
    """Return the naming scheme ``scheme`` (``None`` or ``''`` for the generic one).

    Raises
    ------
    ValueError
        If the scheme is unknown; the message lists the known ones.
    """
    key = scheme or None
    if key not in SCHEMES:
        known = sorted(k for k in SCHEMES if k)
        raise ValueError(f"invalid scheme {scheme!r}; known schemes: {known} or None")
    return SCHEMES[key]
