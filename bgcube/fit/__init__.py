"""Differentiable background fits with JAX.

Parametric rate models written as pure ``jax.numpy`` functions, the Poisson
(Cash) statistic of a counts cube with exact gradients and Hessians, a
damped-Newton fitter that is one jittable and vmappable function, smoothing
of a background model by fitting, and the per-observation norm and tilt
fit. Everything runs in float64. Importing this package leaves JAX's
configuration as it is: the fitting functions (`fit`, `smooth_by_fit`,
`fit_norm_tilt`, `fit_observation_norm`) and the data constructors
(`FitData.from_arrays`, `FitData.from_model`, `BinGeometry.from_edges`) run
inside JAX's thread-local ``enable_x64`` context; to call the building blocks
(models, `cash`, the fitters of `make_fitter`) yourself, enable x64 or work
inside ``with jax.enable_x64(True):``.

Modules
-------
parameters
    `Parameter` and the transforms that turn bounds into unbounded values.
geometry
    `BinGeometry` and `expected_counts`: quadrature of a rate over the bins.
spline
    A natural cubic spline in ``jax.numpy``.
models
    `GaussianModel` (the original test-model family) and `FlexibleModel`.
likelihood
    `cash`, `FitData`, `deviance_residuals`.
optimize
    `fit`, `make_fitter`, `build_fitter`: the damped-Newton fitter.
result
    `FitResult`, `FitError`, `STATUS_MESSAGES`.
smooth
    `smooth_by_fit`: replace a background cube by a fitted model's rate.
normalisation
    `fit_norm_tilt`, `fit_observation_norm`: norm and spectral tilt of a
    template for one run.
"""

import importlib

# Submodules are imported on first use (PEP 562): importing bgcube.fit.joint or
# another submodule does not import JAX, whose import takes a second or more.
_ATTRIBUTES = {
    "BinGeometry": "geometry",
    "expected_counts": "geometry",
    "integrated_rate": "geometry",
    "FitData": "likelihood",
    "cash": "likelihood",
    "cash_terms": "likelihood",
    "deviance_residuals": "likelihood",
    "model_statistic": "likelihood",
    "MODELS": "models",
    "FlexibleModel": "models",
    "GaussianModel": "models",
    "RateModel": "models",
    "gaussian_values_from_test_model": "models",
    "NormTiltData": "normalisation",
    "fit_norm_tilt": "normalisation",
    "fit_norm_tilt_at": "normalisation",
    "fit_observation_norm": "normalisation",
    "make_norm_tilt_fitter": "normalisation",
    "norm_tilt_npred": "normalisation",
    "STATUS_MESSAGES": "optimize",
    "FitError": "optimize",
    "FitOutput": "optimize",
    "FitResult": "optimize",
    "build_fitter": "optimize",
    "fit": "optimize",
    "make_fitter": "optimize",
    "start_values": "optimize",
    "Parameter": "parameters",
    "below_threshold": "smooth",
    "fitted_rate_cube": "smooth",
    "smooth_by_fit": "smooth",
}


def __getattr__(name):
    module = _ATTRIBUTES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BinGeometry",
    "FitData",
    "FitError",
    "FitOutput",
    "FitResult",
    "FlexibleModel",
    "GaussianModel",
    "MODELS",
    "NormTiltData",
    "Parameter",
    "RateModel",
    "STATUS_MESSAGES",
    "below_threshold",
    "build_fitter",
    "cash",
    "cash_terms",
    "deviance_residuals",
    "expected_counts",
    "fit",
    "fit_norm_tilt",
    "fit_norm_tilt_at",
    "fit_observation_norm",
    "fitted_rate_cube",
    "gaussian_values_from_test_model",
    "integrated_rate",
    "make_fitter",
    "make_norm_tilt_fitter",
    "model_statistic",
    "norm_tilt_npred",
    "smooth_by_fit",
    "start_values",
]
