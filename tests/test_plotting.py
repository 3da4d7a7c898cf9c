"""Plots of cubes and models, headless."""

import subprocess
import sys
import textwrap

import astropy.units as u
import matplotlib
import numpy as np
import pytest
from astropy.coordinates import Angle

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from bgcube import FOVCube, FOVCubeBackgroundModel  # noqa: E402
from bgcube.plotting import plot_image, plot_spectrum, radial_profile  # noqa: E402

X_EDGES = np.linspace(-3, 3, 13) * u.deg
Y_EDGES = np.linspace(-2, 2, 9) * u.deg
E_EDGES = np.geomspace(0.1, 100, 7) * u.TeV


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def make_cube(scheme="bg_cube", backend=None, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.uniform(1.0, 2.0, (6, 8, 12)) * np.geomspace(1, 1e-6, 6)[:, None, None]
    return FOVCube(X_EDGES, Y_EDGES, E_EDGES, data=data, scheme=scheme, backend=backend)


def colorbar_label(ax):
    """The label of the colour bar drawn for the image of ``ax``."""
    return ax.images[0].colorbar.ax.get_ylabel()


def title_energy_bin(cube, ax):
    """Index of the energy bin named in an image's title 'Energy = [lo, hi) TeV'."""
    lo, hi = (float(v) for v in ax.get_title().split("[")[1].split(")")[0].split(","))
    return cube.find_energy_bin(np.sqrt(lo * hi) * u.TeV)


def test_plot_image_shows_the_cube_slice(xp):
    cube = make_cube(backend=xp)
    fig, current = plt.subplots()
    ax = cube.plot_image(energy=2 * u.TeV)  # a new figure, as the original
    assert ax.figure is not fig and not current.images
    index = cube.find_energy_bin(2 * u.TeV)
    image = ax.images[0]
    np.testing.assert_array_equal(np.asarray(image.get_array()), cube.quantity.value[index])
    assert image.origin == "lower"
    np.testing.assert_allclose(image.get_extent(), cube.image_extent.deg)
    lo, hi = cube.energy_edges[index : index + 2].value
    assert ax.get_title() == f"Energy = [{lo:.3g}, {hi:.3g}) TeV"
    assert ax.get_xlabel() == "DETX [deg]"
    assert ax.get_ylabel() == "DETY [deg]"
    assert colorbar_label(ax) == "Background rate [1 / (MeV s sr)]"


@pytest.mark.parametrize(
    "scheme, unit, label",
    [
        ("bg_cube", "1 / (MeV s sr)", "Background rate [1 / (MeV s sr)]"),
        ("bg_counts_cube", "", "Counts"),
        ("bg_livetime_cube", "s", "Observation time [s]"),
        (None, "m", "Data [m]"),
    ],
)
def test_labels_follow_the_scheme(scheme, unit, label):
    cube = make_cube(scheme)
    cube.unit = u.Unit(unit)
    ax = plot_image(cube, 1 * u.TeV, ax=plt.figure().add_subplot())
    assert colorbar_label(ax) == label
    names = cube.scheme_dict
    assert ax.get_xlabel() == f"{names['coordx_plot_name']} [deg]"
    ax = plot_spectrum(cube, Angle([0.1, 0.1], u.deg), ax=plt.figure().add_subplot())
    assert ax.get_ylabel() == label
    assert ax.get_xlabel() == "Energy [TeV]"


def test_style_kwargs_and_axes_are_used():
    cube = make_cube()
    fig, (ax1, ax2) = plt.subplots(1, 2)
    returned = cube.plot_image(
        30 * u.TeV, ax=ax2, style_kwargs={"norm": LogNorm(), "cmap": "viridis"}
    )
    assert returned is ax2 and not ax1.images
    assert isinstance(ax2.images[0].norm, LogNorm)
    assert ax2.images[0].get_cmap().name == "viridis"
    cube.plot_spectrum(Angle([0, 0], u.deg), ax=ax1, style_kwargs={"color": "red", "label": "x"})
    assert ax1.lines[0].get_color() == "red" and ax1.lines[0].get_label() == "x"


def test_plot_spectrum_shows_the_bin(xp):
    cube = make_cube(backend=xp)
    coord = Angle([0.7, -1.2], u.deg)
    ax = cube.plot_spectrum(coord, ax=plt.figure().add_subplot())
    ix, iy = cube.find_coord_bin(coord)
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), cube.energy_bin_centers.to_value(u.TeV))
    np.testing.assert_array_equal(line.get_ydata(), cube.quantity.value[:, iy, ix])
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_title() == "DETX = [0.5, 1) deg, DETY = [-1.5, -1) deg"


def test_spectrum_of_zeros_keeps_a_linear_axis():
    cube = FOVCube(X_EDGES, Y_EDGES, E_EDGES, scheme="bg_counts_cube")
    ax = cube.plot_spectrum(Angle([0, 0], u.deg), ax=plt.figure().add_subplot())
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"


def test_outside_the_cube_is_an_error():
    cube = make_cube()
    with pytest.raises(ValueError, match="outside the cube"):
        cube.plot_image(200 * u.TeV, ax=plt.figure().add_subplot())
    with pytest.raises(ValueError, match="outside the cube"):
        cube.plot_spectrum(Angle([5, 0], u.deg), ax=plt.figure().add_subplot())


def test_more_than_one_energy_or_position_is_an_error_before_drawing():
    cube = make_cube()
    with pytest.raises(ValueError, match=r"energy must be exactly 1 value .* got 2 values"):
        cube.plot_image(energy=[1, 2] * u.TeV)
    with pytest.raises(ValueError, match=r"coord must be an \(x, y\) pair"):
        cube.plot_spectrum([0, 0, 0] * u.deg)
    assert plt.get_fignums() == []  # no empty figure left behind
    cube.plot_image(energy=[1] * u.TeV)  # one value in an array is fine


@pytest.mark.parametrize("name", ["plot_image", "plot_spectrum"])
def test_plot_methods_have_full_docstrings(name):
    """``help(FOVCube.plot_image)`` shows the parameters, not a one-liner pointing elsewhere."""
    import inspect

    doc = inspect.getdoc(getattr(FOVCube, name))
    argument = {"plot_image": "energy", "plot_spectrum": "coord"}[name]
    for part in ("Parameters\n----------", f"{argument} : ", "ax : ", "style_kwargs : "):
        assert part in doc
    assert "Returns\n-------\nax : `~matplotlib.axes.Axes`" in doc and "Raises" in doc


def test_radial_profile_is_the_ring_mean():
    x = np.linspace(-3, 3, 31) * u.deg
    e = np.geomspace(1, 10, 3) * u.TeV
    centres = 0.5 * (x[:-1] + x[1:]).value
    xx, yy = np.meshgrid(centres, centres)
    offset = np.hypot(xx, yy)
    data = np.stack([np.exp(-(offset**2)), 2 + offset])
    cube = FOVCube(x, x, e, data=data)
    for index, energy in enumerate([2, 7] * u.TeV):
        rings, profile = radial_profile(cube, energy)
        width = 0.2
        assert rings.unit == u.deg and profile.unit == cube.unit
        np.testing.assert_allclose(np.diff(rings.value), width)
        # reference: mean over the pixels whose centre lies in each ring
        for k, r in enumerate(rings.value):
            in_ring = (offset >= r - width / 2) & (offset < r + width / 2)
            if k == len(rings) - 1:
                in_ring |= offset >= r + width / 2
            expected = data[index][in_ring].mean() if in_ring.any() else np.nan
            np.testing.assert_allclose(profile.value[k], expected, rtol=1e-12)


def test_peek_of_a_cube(xp):
    cube = make_cube(backend=xp)
    fig = cube.peek()
    assert isinstance(fig, matplotlib.figure.Figure)
    with_images = [ax for ax in fig.axes if ax.images]
    assert len(with_images) == 3
    indices = [title_energy_bin(cube, ax) for ax in with_images]
    assert indices == [1, 3, 5]  # 6 bins, 3 images: bins (k + 1/2) * 6 / 3
    for ax, index in zip(with_images, indices, strict=True):
        np.testing.assert_array_equal(
            np.asarray(ax.images[0].get_array()), cube.quantity.value[index]
        )
    titles = [ax.get_title() for ax in fig.axes]
    assert "Spectra" in titles
    assert "Radial profile (mean over rings of offset)" in titles
    spectra = fig.axes[titles.index("Spectra")]
    assert len(spectra.lines) == 3
    assert fig.get_suptitle() == "Background rate cube"


def test_peek_of_a_model():
    model = FOVCubeBackgroundModel.set_cube_binning(X_EDGES, Y_EDGES, E_EDGES)
    with pytest.raises(ValueError, match="no cube with non-zero data"):
        model.peek()
    model.counts_cube.data = model.counts_cube.data + 3.0
    fig = model.peek()
    assert fig.get_suptitle() == "Background model (ONTIME): counts"
    model.add_observation_time(100 * u.s).compute_rate()
    fig = model.peek()
    assert fig.get_suptitle() == "Background model (ONTIME): background rate"
    for ax in [ax for ax in fig.axes if ax.images]:
        index = title_energy_bin(model.background_cube, ax)
        np.testing.assert_array_equal(
            np.asarray(ax.images[0].get_array()), model.background_cube.quantity.value[index]
        )


def test_real_model_plots(shared_data):
    cube = FOVCube.read(
        shared_data / "gammapy-extra-background/bg_cube_model_test1.fits",
        format="table",
        scheme="bg_cube",
    )
    ax = cube.plot_image(2 * u.TeV, ax=plt.figure().add_subplot())
    index = cube.find_energy_bin(2 * u.TeV)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), cube.data[index])
    assert colorbar_label(ax) == f"Background rate [{u.Unit('1 / (s sr TeV)')}]"
    ax = cube.plot_spectrum(Angle([0, 0], u.deg), ax=plt.figure().add_subplot())
    assert ax.get_title().startswith("DETX = [0, ")


def test_importing_bgcube_does_not_import_matplotlib():
    code = textwrap.dedent(
        """
        import sys
        import bgcube, bgcube.plotting, bgcube.cube, bgcube.model
        assert not [m for m in sys.modules if m.split(".")[0] == "matplotlib"]
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_peek_shows_only_energies_with_data_and_spectra_leave_gaps():
    data = np.zeros((6, 4, 4))
    data[1:3] = 1.0  # only bins 1 and 2 hold data
    cube = FOVCube(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 5) * u.deg,
        np.geomspace(0.1, 100, 7) * u.TeV,
        data=data,
        scheme="bg_counts_cube",
    )
    figure = cube.peek(n_energies=3)
    try:
        images = [ax.images[0].get_array() for ax in figure.axes if ax.images]
        assert len(images) == 2 and all(np.all(np.asarray(im) == 1.0) for im in images)
        spectrum = next(ax for ax in figure.axes if ax.get_title() == "Spectra").lines[0]
        y = np.asarray(spectrum.get_ydata(), dtype=float)
        assert np.isnan(y[0]) and np.isnan(y[-1]) and np.all(y[1:3] == 1.0)
    finally:
        plt.close(figure)


# --- empty bins and colour bars ------------------------------------------------------


def pixel_colour(ax, x, y):
    """RGB (0-1) of the rendered pixel at data coordinates ``(x, y)`` of ``ax`` (Agg)."""
    figure = ax.figure
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    px, py = ax.transData.transform((x, y))
    return rgba[int(rgba.shape[0] - py), int(px), :3] / 255.0


def cube_with_empty_bins():
    """A counts cube whose 1 TeV image is empty at DETX, DETY = (-2.75, -1.75) deg."""
    cube = make_cube("bg_counts_cube")
    data = cube.quantity.value.copy()
    data[:, 0, 0] = 0.0
    data[:, 3, 5] = data.max() * 10  # the hottest bin (the colour map's maximum)
    cube.data = data
    return cube


@pytest.mark.parametrize("cmap", [None, "gray", "RdBu_r", "viridis"])
def test_an_empty_bin_is_drawn_in_a_colour_the_map_does_not_use(cmap):
    cube = cube_with_empty_bins()
    style = None if cmap is None else {"cmap": cmap}
    ax = cube.plot_image(1 * u.TeV, style_kwargs=style)
    base = matplotlib.colormaps[cmap or "afmhot"]
    empty = pixel_colour(ax, -2.75, -1.75)
    hottest = pixel_colour(ax, -0.25, -0.25)
    np.testing.assert_allclose(hottest, base(1.0)[:3], atol=0.02)  # the map's maximum
    colours = base(np.linspace(0, 1, base.N))[:, :3]
    assert np.min(np.linalg.norm(colours - empty, axis=1)) > 0.2  # no colour of the map
    assert np.linalg.norm(empty - np.asarray(matplotlib.colors.to_rgb("white"))) > 0.2
    # the colour bar shows the map unchanged
    bar = ax.images[0].colorbar
    np.testing.assert_array_equal(bar.cmap(np.linspace(0, 1, 256)), base(np.linspace(0, 1, 256)))


def test_afmhot_empty_bins_are_light_grey_and_a_chosen_bad_colour_is_kept():
    from bgcube.plotting import empty_bin_cmap

    assert matplotlib.colors.to_hex(empty_bin_cmap("afmhot").get_bad()) == "#cccccc"
    chosen = matplotlib.colormaps["afmhot"].with_extremes(bad="blue")
    ax = cube_with_empty_bins().plot_image(1 * u.TeV, style_kwargs={"cmap": chosen})
    np.testing.assert_allclose(pixel_colour(ax, -2.75, -1.75), [0, 0, 1], atol=0.02)


def colour_bar_gaps(figure):
    """For each image of ``figure``: (gap to its colour bar, height difference), image widths."""
    figure.canvas.draw()
    gaps = []
    for ax in [ax for ax in figure.axes if ax.images]:
        image = ax.get_window_extent()
        bar = ax.images[0].colorbar.ax.get_window_extent()
        gaps.append(((bar.x0 - image.x1) / image.width, abs(bar.height - image.height)))
    return gaps


@pytest.mark.parametrize("n_energies", [3, 2, 5])
def test_peek_colour_bars_sit_next_to_their_images(n_energies):
    fig = make_cube().peek(n_energies=n_energies)
    gaps = colour_bar_gaps(fig)
    assert len(gaps) == n_energies
    for gap, height in gaps:
        assert 0 <= gap <= 0.1 and height < 2  # pixels
    renderer = fig.canvas.get_renderer()
    bars = [ax.images[0].colorbar.ax for ax in fig.axes if ax.images]
    assert all(b.get_tightbbox(renderer).x1 <= fig.bbox.x1 for b in bars)  # label inside


def test_a_new_figure_keeps_its_colour_bar_next_to_the_image():
    ax = make_cube().plot_image(1 * u.TeV)
    ((gap, height),) = colour_bar_gaps(ax.figure)
    assert 0 <= gap <= 0.1 and height < 2
    bar = ax.images[0].colorbar.ax
    assert bar.get_tightbbox(ax.figure.canvas.get_renderer()).x1 <= ax.figure.bbox.x1
    fig, (left, right) = plt.subplots(1, 2)  # the caller's Axes, no layout engine
    make_cube().plot_image(1 * u.TeV, ax=left)
    ((gap, height),) = colour_bar_gaps(fig)
    assert 0 <= gap <= 0.1 and height < 2
