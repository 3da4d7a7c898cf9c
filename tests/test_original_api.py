"""The original Gammapy FOVCube documentation runs as written (only the import and file path changed).

The examples below are the original documentation's usage, line for line;
the only changes are ``from bgcube import FOVCube`` and where ``filename``
points. They run through ``exec`` so that they stay verbatim.
"""

import ast
import warnings

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
import pytest

from bgcube import FOVCube
from bgcube.errors import BgcubeDeprecationWarning

#: The original example: read, plot an image and a spectrum, write both formats.
EXAMPLE_PLOT_AND_WRITE = """
import matplotlib.pyplot as plt
from astropy.units import Quantity
from astropy.coordinates import Angle
from bgcube import FOVCube

bg_cube_model = FOVCube.read(filename, format='table', scheme='bg_cube')
bg_cube_model.plot_image(energy=Quantity(2., 'TeV'))
bg_cube_model.plot_spectrum(coord=Angle([0., 0.], 'degree'))
bg_cube_model.write('{}_bin_table.fits'.format(outname), format='table', clobber=True)
bg_cube_model.write('{}_image.fits'.format(outname), format='image', clobber=True)
"""

#: The original documentation's data access.
EXAMPLE_DATA_ACCESS = """
energy_bin = bg_cube_model.find_energy_bin(energy=Quantity(2., 'TeV'))
det_bin = bg_cube_model.find_det_bin(det=Angle([0., 0.], 'degree'))
bg_cube_model.background[energy_bin, det_bin[1], det_bin[0]]
"""

#: The original style of a multi-panel figure: images and spectra into given axes.
EXAMPLE_AXES = """
import matplotlib.pyplot as plt
from astropy.units import Quantity
from astropy.coordinates import Angle
from bgcube import FOVCube

bg_cube_model = FOVCube.read(filename, format='table', scheme='bg_cube')
fig, axes = plt.subplots(nrows=1, ncols=3)
bg_cube_model.plot_image(energy=Quantity(0.5, 'TeV'), ax=axes[0])
bg_cube_model.plot_image(energy=Quantity(50., 'TeV'), ax=axes[1])
bg_cube_model.plot_spectrum(coord=Angle([0., 0.], 'degree'), ax=axes[2],
                            style_kwargs=dict(label='(0, 0) deg'))
bg_cube_model.plot_spectrum(coord=Angle([2., 2.], 'degree'), ax=axes[2],
                            style_kwargs=dict(label='(2, 2) deg'))
axes[2].set_title('')
axes[2].legend()
"""


@pytest.fixture
def test1(shared_data):
    return shared_data / "gammapy-extra-background" / "bg_cube_model_test1.fits"


def run(code, namespace):
    """Run ``code`` (its last expression's value in ``namespace['_']``); only ``clobber=`` may warn."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(tree, "<example>", "exec"), namespace)
        if last is not None:
            namespace["_"] = eval(
                compile(ast.Expression(last.value), "<example>", "eval"), namespace
            )
    for w in caught:
        assert issubclass(w.category, BgcubeDeprecationWarning), str(w.message)
        assert "clobber" in str(w.message)
    return namespace


def test_plot_and_write_example_runs_as_written(test1, tmp_path):
    plt.close("all")
    namespace = run(
        EXAMPLE_PLOT_AND_WRITE,
        {"filename": str(test1), "outname": str(tmp_path / "cube_background_model")},
    )
    try:
        # one new figure per plot call without ax: an image, then a spectrum
        numbers = plt.get_fignums()
        assert len(numbers) == 2
        image_figure, spectrum_figure = (plt.figure(n) for n in numbers)
        assert len(image_figure.axes[0].images) == 1 and not image_figure.axes[0].lines
        assert not spectrum_figure.axes[0].images and len(spectrum_figure.axes[0].lines) == 1
        # both files read back equal to the original
        original = FOVCube.read(test1, format="table", scheme="bg_cube")
        assert namespace["bg_cube_model"].unit == original.unit
        for name, fmt in (
            ("cube_background_model_bin_table.fits", "table"),
            ("cube_background_model_image.fits", "image"),
        ):
            back = FOVCube.read(tmp_path / name, format=fmt, scheme="bg_cube")
            assert back.unit == original.unit
            np.testing.assert_array_equal(back.quantity.value, original.quantity.value)
            for edges in ("energy_edges", "coordx_edges", "coordy_edges"):
                np.testing.assert_allclose(
                    getattr(back, edges).to_value(getattr(original, edges).unit),
                    getattr(original, edges).value,
                    rtol=1e-12,
                )
    finally:
        plt.close("all")


def test_data_access_example_gives_a_quantity(test1, tmp_path):
    namespace = run(
        EXAMPLE_PLOT_AND_WRITE,
        {"filename": str(test1), "outname": str(tmp_path / "cube_background_model")},
    )
    plt.close("all")
    run(EXAMPLE_DATA_ACCESS, namespace)
    value = namespace["_"]
    cube = namespace["bg_cube_model"]
    assert isinstance(value, u.Quantity)
    assert value.unit == cube.unit and value.unit.is_equivalent("1 / (MeV s sr)")
    ix, iy = cube.find_coord_bin([0, 0] * u.deg)
    ie = cube.find_energy_bin(2 * u.TeV)
    assert value.value == cube.quantity.value[ie, iy, ix]
    assert value.value > 0


def test_axes_example_draws_into_the_given_axes(test1):
    plt.close("all")
    namespace = run(EXAMPLE_AXES, {"filename": str(test1)})
    try:
        assert plt.get_fignums() == [namespace["fig"].number]  # no extra figure
        axes = namespace["axes"]
        assert len(axes[0].images) == len(axes[1].images) == 1
        assert len(axes[2].lines) == 2
        assert [t.get_text() for t in axes[2].get_legend().get_texts()] == [
            "(0, 0) deg",
            "(2, 2) deg",
        ]
    finally:
        plt.close("all")


def test_background_is_for_background_cubes(test1):
    counts = FOVCube.read(test1, format="table", scheme="bg_cube")
    counts.scheme = "bg_counts_cube"
    with pytest.raises(AttributeError, match="use .quantity"):
        counts.background  # noqa: B018


def test_find_det_bin_takes_det_or_coord(test1):
    cube = FOVCube.read(test1, format="table", scheme="bg_cube")
    expected = cube.find_coord_bin([0.5, -1.0] * u.deg)
    np.testing.assert_array_equal(cube.find_det_bin(det=[0.5, -1.0] * u.deg), expected)
    np.testing.assert_array_equal(cube.find_det_bin([0.5, -1.0] * u.deg), expected)
    np.testing.assert_array_equal(cube.find_det_bin(coord=[0.5, -1.0] * u.deg), expected)
    with pytest.raises(TypeError, match="one position"):
        cube.find_det_bin()
