"""Building a `bgcube.FOVCubeBackgroundModel` from observations, as the original did.

``define_cube_binning`` (the original make-models binning, whose rules are in
`bgcube.binning`) and ``fill_obs`` (which asks the data store to fill the
model, `bgcube.data.store.DataStore.fill_model`, so that the model imports
nothing of the data layer), as a base of `bgcube.FOVCubeBackgroundModel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from astropy.table import Table

    from ._types import BackendLike

__all__ = ["ObservationFilling"]


class ObservationFilling:
    """``define_cube_binning`` and ``fill_obs`` (a mixin)."""

    @classmethod
    def define_cube_binning(
        cls,
        observation_table: Table,
        method: str = "default",
        *,
        backend: BackendLike = None,
        time_convention: str = "ONTIME",
    ) -> Self:
        """An empty model with the original make-models binning for these observations.

        20 log energy bins over 0.1-100 TeV and 60 x 60 bins over +-0.07 rad,
        fewer for fewer than 100 observations; ``method='michi'`` starts the
        energy axis at the group's lowest energy threshold. See
        `bgcube.binning.define_cube_binning`.

        Returns
        -------
        model : FOVCubeBackgroundModel
        """
        from .binning import define_cube_binning

        detx, dety, energy = define_cube_binning(observation_table, method)
        return cls.set_cube_binning(
            detx, dety, energy, backend=backend, time_convention=time_convention
        )

    def fill_obs(
        self,
        observation_table: Table,
        data_store: Any,
        exclusion: Any = None,
        *,
        alignment: str = "RADEC",
        fail_fast: bool = True,
        progress: bool | None = None,
    ) -> tuple[list, list[tuple[int, str]]]:
        """Add the events and time of the observations in ``observation_table``.

        Parameters
        ----------
        observation_table : `~astropy.table.Table`
            Rows with OBS_ID.
        data_store : `~bgcube.data.store.DataStore`
            Any object with bgcube's ``DataStore.fill_model`` method.
        exclusion : `~bgcube.data.exclusion.ExclusionRegions`, optional
            Events inside are dropped and each pixel's time is reduced by its
            excluded fraction, per observation.
        alignment : {'RADEC', 'ALTAZ'}
        fail_fast : bool
            Raise on an unreadable run (default); otherwise leave it out.
        progress : bool, optional
            Progress bar (default: when stderr is a terminal).

        Returns
        -------
        filled : list of `~bgcube.data.fill.ObservationFill`
        failed : list of (OBS_ID, reason)

        Raises
        ------
        bgcube.errors.ObservationError
            If ``observation_table`` is not a table with an OBS_ID column.
        TypeError
            If ``data_store`` is not a data store (has no ``fill_model``).
        """
        if "OBS_ID" not in _columns(observation_table):
            from .errors import ObservationError

            raise ObservationError(
                "observation_table must be a table of observations with an OBS_ID column "
                f"(e.g. data_store.obs_table), got {_describe(observation_table)}"
            )
        if not callable(getattr(data_store, "fill_model", None)):
            raise TypeError(
                "data_store must be a bgcube DataStore (e.g. DataStore.from_dir(folder)), or an "
                f"object with its fill_model method; got {_describe(data_store)}"
            )
        # the store fills the model: the container imports nothing of the data layer
        return data_store.fill_model(
            self,
            observation_table["OBS_ID"],
            exclusion,
            alignment=alignment,
            fail_fast=fail_fast,
            progress=progress,
        )


def _columns(obj) -> list:
    """Column names of a table (or keys of a mapping of columns), else []."""
    if hasattr(obj, "colnames"):
        return list(obj.colnames)
    return list(obj.keys()) if hasattr(obj, "keys") else []


def _describe(obj) -> str:
    if obj is None:
        return "None"
    if hasattr(obj, "colnames") or hasattr(obj, "keys"):
        return f"a {type(obj).__name__} with columns {_columns(obj)}"
    return f"a {type(obj).__module__}.{type(obj).__name__}"
