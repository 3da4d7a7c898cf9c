"""Unit strings in FITS files: lenient parsing on read, strict FITS strings on write.

Real background files carry unit strings that astropy's FITS parser
rejects: the original Gammapy wrote ``'1 / (s sr TeV)'`` (astropy's generic
format), CTA 1DC writes ``'1/s/MeV/sr'`` (OGIP style). Reading tries the
generic, FITS and OGIP parsers in turn, then a small alias table; writing
uses the FITS format, which every FITS reader (and Gammapy) understands.
"""

from __future__ import annotations

import warnings

import astropy.units as u

from ..errors import FileFormatError

__all__ = ["parse_unit", "format_unit", "UNIT_ALIASES", "PARSERS"]

#: astropy unit formats tried in order (None is astropy's generic format).
PARSERS = (None, "fits", "ogip")

#: Spellings seen in files that no astropy parser accepts, and their meaning.
#: Keys are compared after removing spaces and lower-casing.
UNIT_ALIASES = {
    "counts": "ct",
    "count": "ct",
    "cts": "ct",
    "events": "ct",
    "sec": "s",
    "seconds": "s",
    "1/s/mev/sr": "MeV-1 s-1 sr-1",
    "1/s/tev/sr": "TeV-1 s-1 sr-1",
    "1/(s*mev*sr)": "MeV-1 s-1 sr-1",
    "1/(s*tev*sr)": "TeV-1 s-1 sr-1",
    "none": "",
    "dimensionless": "",
}


def _try_parse(text: str, fmt):
    with warnings.catch_warnings():
        # Parsers warn about deprecated spellings they still accept; a
        # successful parse is all that matters here.
        warnings.simplefilter("ignore", u.UnitsWarning)
        try:
            unit = u.Unit(text, format=fmt) if fmt else u.Unit(text)
        except (ValueError, TypeError):
            return None
    if isinstance(unit, u.UnrecognizedUnit):
        return None
    return unit


def parse_unit(text, *, filename=None, hdu=None, column=None) -> u.UnitBase:
    """Parse a unit string from a FITS file.

    Parameters
    ----------
    text : str or None
        The TUNITn / BUNIT value. None or blank means dimensionless.
    filename, hdu, column : optional
        Where the string comes from, for the error message.

    Returns
    -------
    unit : `~astropy.units.UnitBase`

    Raises
    ------
    FileFormatError
        If no parser and no alias understands the string; the message names
        the file, HDU, column and the string.

    Examples
    --------
    >>> parse_unit("1/s/MeV/sr")
    Unit("1 / (MeV s sr)")
    """
    if isinstance(text, u.UnitBase) and not isinstance(text, u.UnrecognizedUnit):
        return text
    text = "" if text is None else str(text).strip()
    if not text:
        return u.dimensionless_unscaled
    for fmt in PARSERS:
        unit = _try_parse(text, fmt)
        if unit is not None:
            return unit
    alias = UNIT_ALIASES.get(text.replace(" ", "").lower())
    if alias is not None:
        return u.Unit(alias)
    where = f"column {column!r}: " if column else ""
    raise FileFormatError(
        f"{where}cannot parse the unit string {text!r} (tried astropy's generic, "
        "FITS and OGIP formats and bgcube's aliases); expected e.g. 'MeV-1 s-1 sr-1'",
        filename=filename,
        hdu=hdu,
    )


def format_unit(unit) -> str:
    """The FITS string of ``unit`` (``''`` for dimensionless).

    Falls back to astropy's generic string when the FITS standard cannot
    express the unit (e.g. a scale factor); :func:`parse_unit` reads both.

    Parameters
    ----------
    unit : str or `~astropy.units.UnitBase`

    Returns
    -------
    text : str
    """
    unit = u.Unit(unit)
    if unit == u.dimensionless_unscaled:
        return ""
    try:
        text = unit.to_string("fits")
        if u.Unit(text, format="fits") == unit:
            return text
    except (ValueError, TypeError):
        pass
    return unit.to_string()
