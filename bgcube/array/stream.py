"""Fill a histogram from event chunks: memory bounded by the chunk, not the total.

:class:`HistogramFiller` adds the counts of one chunk at a time (through
:func:`bgcube.array.histogram.fill_histogram`, so every chunk takes the
backend's fast path) into one float64 histogram that stays on the chunks'
device; :func:`fill_histogram_chunks` drives it over any iterable of
chunks, for example :func:`bgcube.data.chunks.iter_event_chunks` reading FITS
files piece by piece.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._typing import Array, Namespace
from .binning import Binning
from .histogram import fill_histogram
from .namespace import array_namespace

__all__ = ["HistogramFiller", "fill_histogram_chunks"]


class HistogramFiller:
    """Accumulate event chunks into one ``[nE, ny, nx]`` float64 histogram.

    Parameters
    ----------
    binnings : tuple of Binning
        ``(energy, dety, detx)`` axes (TeV, deg, deg).
    method : str
        Fill method for every chunk (see ``fill_histogram``).
    xp : module, optional
        Namespace of the chunks; found from the first chunk by default.

    Examples
    --------
    >>> filler = HistogramFiller(binnings)                       # doctest: +SKIP
    >>> for energy, dety, detx in chunks:                        # doctest: +SKIP
    ...     filler.fill(energy, dety, detx)
    >>> filler.counts.shape                                      # doctest: +SKIP
    (20, 60, 60)
    """

    def __init__(
        self, binnings: Iterable[Binning], *, method: str = "auto", xp: Namespace | None = None
    ) -> None:
        self.binnings = tuple(binnings)
        self.method = method
        self.xp = xp
        self.n_chunks = 0
        self.n_events = 0
        self._counts = None

    def fill(
        self, energy: Array, dety: Array, detx: Array, weights: Array | None = None
    ) -> HistogramFiller:
        """Add one chunk of events (TeV, deg, deg; optional weights).

        Returns
        -------
        self : HistogramFiller
        """
        xp = array_namespace(energy, dety, detx, weights) if self.xp is None else self.xp
        self.xp = xp
        counts = fill_histogram(
            energy, dety, detx, self.binnings, weights, method=self.method, xp=xp
        )
        self._counts = counts if self._counts is None else self._counts + counts
        self.n_chunks += 1
        self.n_events += int(energy.shape[0])
        return self

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nE, ny, nx)``."""
        return tuple(b.nbin for b in self.binnings)

    @property
    def counts(self) -> Array:
        """The float64 counts so far, on the chunks' device (zeros before any chunk).

        Raises
        ------
        ValueError
            If nothing was filled and no ``xp`` was given (the backend is unknown).
        """
        if self._counts is None:
            if self.xp is None:
                raise ValueError("no chunk filled yet and no xp given: the backend is unknown")
            return self.xp.zeros(self.shape, dtype=self.xp.float64)
        return self._counts


def fill_histogram_chunks(
    chunks: Iterable[tuple],
    binnings: Iterable[Binning],
    *,
    method: str = "auto",
    xp: Namespace | None = None,
) -> Array:
    """Histogram an iterable of event chunks; peak memory is one chunk plus the histogram.

    Parameters
    ----------
    chunks : iterable of tuple
        ``(energy, dety, detx)`` or ``(energy, dety, detx, weights)`` arrays
        (TeV, deg, deg), each chunk 1-D arrays of one length, one backend.
    binnings : tuple of Binning
        ``(energy, dety, detx)`` axes.
    method : str
        Fill method (see ``fill_histogram``).
    xp : module, optional
        Namespace; needed only to return zeros when ``chunks`` is empty.

    Returns
    -------
    counts : array of float64
        Shape ``(nE, ny, nx)`` on the chunks' device.
    """
    filler = HistogramFiller(binnings, method=method, xp=xp)
    for chunk in chunks:
        if len(chunk) not in (3, 4):
            raise ValueError(
                f"a chunk is (energy, dety, detx[, weights]), got a tuple of {len(chunk)}"
            )
        filler.fill(*chunk)
    return filler.counts
