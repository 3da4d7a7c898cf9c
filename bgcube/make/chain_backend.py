"""Where the per-run chain of a build runs: on the backend's device, or on the host.

With ``backend='jax'`` on a machine where JAX has no accelerator, JAX's
device is the host's CPU, which shares the host's memory: moving the event
columns "to the device" copies nothing, and XLA's CPU programs gain nothing
over NumPy's compiled path (`~bgcube.data.fill.fill_observation`) for runs
of 1e4-1e6 events, while importing JAX and compiling its programs cost
seconds. There, a group build runs its per-run chain on NumPy (the same
cubes: the chain of `bgcube.make.device_chain` gives NumPy's counts and
times, tested) and moves each group's summed model to JAX when it is first
used (`DeferredModel`), so a build that only writes files never imports
JAX. The joint build (``--model joint``, the default) follows the same
rule: its runs are always read into cubes on NumPy, and where the chain
would run on the host its fit does too (`fit_backend`), so that it takes
what the NumPy build takes and never imports JAX; its model is NumPy's
whatever the backend (`~bgcube.fit.joint.JointBackgroundModel` holds
NumPy arrays), and the files are the NumPy build's, byte for byte but the
date (their ``BACKEND`` keyword names the backend the fit ran on). With an
accelerator (a JAX GPU or TPU plugin installed, or ``JAX_PLATFORMS``
naming one), and for CuPy and array_api_strict, the chain runs on the
device (`bgcube.make.device_chain`) and the joint fit on the backend.

``$BGCUBE_RUN_CHAIN`` chooses: ``auto`` (default, as above), ``device``
(the backend's chain and joint fit always, e.g. to benchmark XLA on a CPU)
or ``host``.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = [
    "ENV_VAR",
    "accelerator_available",
    "chain_backend",
    "fit_backend",
    "host_only",
    "DeferredModel",
]

#: Environment variable: ``auto``, ``device`` or ``host``.
ENV_VAR = "BGCUBE_RUN_CHAIN"
_MODES = ("auto", "device", "host")
#: Packages that give JAX a device other than the CPU.
_JAX_ACCELERATORS = (
    "jax_cuda12_plugin",
    "jax_cuda13_plugin",
    "jax_rocm60_plugin",
    "jax_rocm7_plugin",
    "libtpu",
    "jax_plugins",
)
_CPU_PLATFORMS = ("", "cpu")


def _mode() -> str:
    mode = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"${ENV_VAR} must be one of {_MODES}, got {mode!r}")
    return mode


def accelerator_available(backend: str) -> bool:
    """Whether ``backend`` may compute on a device other than the host's CPU.

    For JAX, without importing it when it is not imported yet: an imported
    JAX is asked (``jax.default_backend()``); otherwise ``JAX_PLATFORMS``
    decides when set, else whether a GPU or TPU plugin is installed.
    CuPy always has one; any other backend (array_api_strict, ...) is taken
    to have one, so that its own chain runs.

    Parameters
    ----------
    backend : str

    Returns
    -------
    available : bool
    """
    if backend != "jax":
        return True
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "default_backend"):
        return jax.default_backend() != "cpu"
    platforms = os.environ.get("JAX_PLATFORMS", os.environ.get("JAX_PLATFORM_NAME", ""))
    if platforms.strip():
        return any(p.strip().lower() not in _CPU_PLATFORMS for p in platforms.split(","))
    return any(importlib.util.find_spec(name) is not None for name in _JAX_ACCELERATORS)


def chain_backend(backend: str | None) -> str:
    """The backend a build's per-run chain runs on (``'numpy'`` on the host).

    Parameters
    ----------
    backend : str or None
        The build's backend.

    Returns
    -------
    backend : str
        ``backend`` itself, or ``'numpy'`` for JAX without an accelerator
        (see the module docstring) and whenever ``$BGCUBE_RUN_CHAIN=host``.

    Raises
    ------
    ValueError
        If ``$BGCUBE_RUN_CHAIN`` holds something else than auto, device or host.
    """
    if backend in (None, "numpy"):
        return "numpy"
    mode = _mode()
    if mode == "host" or (mode == "auto" and not accelerator_available(backend)):
        return "numpy"
    return backend


def fit_backend(backend: str | None) -> str:
    """The backend a joint build fits its model on: the per-run chain's (`chain_backend`).

    Parameters
    ----------
    backend : str or None
        The build's backend.

    Returns
    -------
    backend : str
        ``'numpy'`` where the chain runs on the host, else ``backend``.
    """
    return chain_backend(backend)


def host_only(config) -> bool:
    """Whether a build of ``config`` needs nothing of its backend during the build.

    True for a group build (BKG_3D, no per-run models) whose chain runs on
    the host: its models are moved to the backend only when used
    (`DeferredModel`); and for a joint build whose fit runs on the host
    (`fit_backend`): its model is NumPy's on any backend. Such a build
    imports no JAX.

    Parameters
    ----------
    config : `~bgcube.make.config.BuildConfig`

    Returns
    -------
    host_only : bool
    """
    if config.backend in (None, "numpy"):
        return False
    if config.model == "joint":
        return fit_backend(config.backend) == "numpy"
    return (
        config.model == "groups"
        and config.model_type == "3d"
        and config.per_observation is None
        and not config.fit_norm
        and config.efficiency_column is None
        and chain_backend(config.backend) == "numpy"
    )


class DeferredModel:
    """A model made on the host, moved to its backend when first asked for.

    Parameters
    ----------
    model : `~bgcube.FOVCubeBackgroundModel`
        On NumPy.
    backend : str
        Where `resolve` moves it (inside JAX's x64 context for JAX: float64 stays float64).
    """

    def __init__(self, model, backend: str):
        self.host, self.backend = model, backend

    def resolve(self):
        """The model on its backend."""
        from ..array.namespace import jax_x64

        if self.backend == "jax":
            with jax_x64():
                return self.host.to_backend(self.backend)
        return self.host.to_backend(self.backend)
