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

from .geometry import BinGeometry, expected_counts, integrated_rate
from .likelihood import FitData, cash, cash_terms, deviance_residuals, model_statistic
from .models import (
    MODELS,
    FlexibleModel,
    GaussianModel,
    RateModel,
    gaussian_values_from_test_model,
)
from .normalisation import (
    NormTiltData,
    fit_norm_tilt,
    fit_norm_tilt_at,
    fit_observation_norm,
    make_norm_tilt_fitter,
    norm_tilt_npred,
)
from .optimize import (
    STATUS_MESSAGES,
    FitError,
    FitOutput,
    FitResult,
    build_fitter,
    fit,
    make_fitter,
    start_values,
)
from .parameters import Parameter
from .smooth import below_threshold, fitted_rate_cube, smooth_by_fit

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
