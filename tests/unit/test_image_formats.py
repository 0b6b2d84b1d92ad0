"""Picture formats: PNG, JPEG, GIF, MP4 and their colouring — real cubes written to real files in
tmp_path, read back with Pillow and PyAV."""

from __future__ import annotations

import io
import os
import threading
import tracemalloc

import av
import dask.array as da
import numpy as np
import pytest
from cmap import Colormap
from PIL import Image

from processes.core.errors import FormatArgumentInvalid, OpenEOError
from processes.formats import file_formats_document, get_output_format
from processes.formats.animation import gif_delay
from processes.formats.colour import (
    COMMON_COLOUR_MAPS,
    Colouring,
    ColouringError,
    ValuesOutOfRange,
    lookup_table,
    to_rgba,
)
from processes.formats.frames import frame_labels
from processes.formats.image import encode_rgba
from processes.library.math import linear_scale_range
from processes.model.raster_cube import new_cube
from tests.unit.test_formats import make_cube

X0, Y0 = 600000.0, 5040000.0


def cube_of(values, dates=None, bands=None, y_ascending=False, x_descending=False, chunks=64):
    """A dask-backed cube of ``values`` ([t,] [bands,] y, x) on a 10 m UTM grid (pixel centres)."""
    values = np.asarray(values)
    height, width = values.shape[-2:]
    dims = {}
    if dates is not None:
        dims["t"] = ("temporal", dates)
    if bands is not None:
        dims["bands"] = ("bands", bands)
    ys = Y0 - 5 - 10 * np.arange(height)
    xs = X0 + 5 + 10 * np.arange(width)
    dims["y"] = ("spatial", ys[::-1] if y_ascending else ys)
    dims["x"] = ("spatial", xs[::-1] if x_descending else xs)
    data = da.from_array(values, chunks=(1,) * (values.ndim - 2) + (chunks, chunks))
    return new_cube(data, dims, crs=32632)


def levels(height, width, seed=0, dtype="float32"):
    """Random values 0–255 (floats, not whole numbers)."""
    return np.random.default_rng(seed).uniform(0, 255, (height, width)).astype(dtype)


def write(fmt, value, tmp_path, **options):
    target = tmp_path / f"out.{get_output_format(fmt).extension}"
    get_output_format(fmt).write(value, target, options)
    return target


def read_png(path):
    with Image.open(path) as image:
        return image.mode, np.asarray(image.convert("RGBA"))


def gif_frames(path):
    """Frames as RGB arrays, and each frame's duration (ms)."""
    frames, durations = [], []
    with Image.open(path) as image:
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
            durations.append(image.info["duration"])
    return frames, durations


def mp4_frames(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        return frames, rate, stream.codec_context.name


def grey(values):
    """Expected grey levels of values 0–255: rounded to whole numbers."""
    return np.rint(values).astype(np.uint8)


# --- /file_formats -----------------------------------------------------------------------------------


def test_picture_formats_are_listed_with_their_parameters():
    output = file_formats_document()["output"]
    for name in ("PNG", "JPEG", "GIF", "MP4"):
        assert output[name]["gis_data_types"] == ["raster"]
        parameters = output[name]["parameters"]
        assert {"colormap", "value_range", "nodata"} <= set(parameters)
        assert "viridis" in parameters["colormap"]["description"]
        assert parameters["value_range"]["default"] is None
    for name in ("GIF", "MP4"):
        assert output[name]["parameters"]["fps"]["default"] == 2
        assert output[name]["parameters"]["caption"]["default"] is False
    assert output["JPEG"]["parameters"]["quality"]["default"] == 90
    media = {name: (get_output_format(name).media_type, get_output_format(name).extension)
             for name in ("png", "jpeg", "gif", "mp4")}
    assert media == {"png": ("image/png", "png"), "jpeg": ("image/jpeg", "jpg"), "gif": ("image/gif", "gif"),
                     "mp4": ("video/mp4", "mp4")}


# --- PNG: grid, values, bands, nodata ----------------------------------------------------------------


def test_png_has_the_cube_grid_and_grey_levels_of_its_values(tmp_path):
    values = levels(70, 130)  # several chunks of 64, not square
    mode, pixels = read_png(write("PNG", cube_of(values), tmp_path))
    assert mode == "L"
    assert pixels.shape == (70, 130, 4)  # height = y, width = x
    np.testing.assert_array_equal(pixels[..., 0], grey(values))
    np.testing.assert_array_equal(pixels[..., 1], grey(values))
    assert (pixels[..., 3] == 255).all()


def test_png_is_north_up_whatever_the_order_of_the_cube(tmp_path):
    values = levels(40, 50)
    flipped = cube_of(values[::-1, ::-1], y_ascending=True, x_descending=True)
    _, pixels = read_png(write("PNG", flipped, tmp_path))
    np.testing.assert_array_equal(pixels[..., 0], grey(values))


def test_png_nan_pixels_are_transparent(tmp_path):
    values = levels(30, 30)
    values[5:10, 7] = np.nan
    mode, pixels = read_png(write("PNG", cube_of(values), tmp_path))
    assert mode == "LA"
    nan = np.isnan(values)
    assert (pixels[..., 3][nan] == 0).all() and (pixels[..., 3][~nan] == 255).all()
    np.testing.assert_array_equal(pixels[..., 0][~nan], grey(values[~nan]))


def test_png_three_bands_are_rgb_and_four_rgba(tmp_path):
    rgb = np.stack([levels(20, 30, seed=s) for s in range(3)])
    mode, pixels = read_png(write("PNG", cube_of(rgb, bands=["B04", "B03", "B02"]), tmp_path))
    assert mode == "RGB"
    np.testing.assert_array_equal(pixels[..., :3], np.moveaxis(grey(rgb), 0, -1))
    rgba = np.concatenate([rgb, levels(20, 30, seed=9)[None]])
    mode, pixels = read_png(write("PNG", cube_of(rgba, bands=["r", "g", "b", "a"]), tmp_path))
    assert mode == "RGBA"
    np.testing.assert_array_equal(pixels, np.moveaxis(grey(rgba), 0, -1))


def test_png_of_one_date_is_accepted(tmp_path):
    values = levels(10, 10)
    _, pixels = read_png(write("PNG", cube_of(values[None], dates=["2023-05-04"]), tmp_path))
    np.testing.assert_array_equal(pixels[..., 0], grey(values))


@pytest.mark.parametrize("name", ["viridis", "RdYlGn", "terrain", "Greys", "magma_r"])
def test_colour_map_gives_the_colour_map_library_colours(tmp_path, name):
    values = np.array([[0, 1, 64, 127], [128, 200, 254, 255]], dtype="float32")
    _, pixels = read_png(write("PNG", cube_of(values), tmp_path, colormap=name))
    expected = Colormap(name)(values.astype(int), bytes=True)  # the library's own 256-level table
    np.testing.assert_array_equal(pixels, expected)
    # and the ends are the ends of the map
    np.testing.assert_array_equal(pixels[0, 0], Colormap(name)(0.0, bytes=True))
    np.testing.assert_array_equal(pixels[1, 3], Colormap(name)(1.0, bytes=True))


def test_value_range_gives_the_levels_of_linear_scale_range(tmp_path):
    reflectance = np.random.default_rng(1).uniform(-500, 12000, (40, 40)).astype("float32")
    cube = cube_of(reflectance)
    _, by_option = read_png(write("PNG", cube, tmp_path, value_range=[0, 3000]))
    scaled = linear_scale_range(cube, 0, 3000, 0, 255)
    _, by_graph = read_png(write("PNG", scaled, tmp_path))
    np.testing.assert_array_equal(by_option, by_graph)
    # clipped to the ends, as linear_scale_range clips
    assert (by_option[..., 0][reflectance <= 0] == 0).all()
    assert (by_option[..., 0][reflectance >= 3000] == 255).all()


def test_values_outside_0_255_are_refused_with_how_to_scale_them(tmp_path):
    cube, _ = make_cube(bands=("B04",), size=64)
    with pytest.raises(OpenEOError) as err:
        write("PNG", cube * 10000, tmp_path)
    assert err.value.code == "FormatUnsuitable"
    assert "linear_scale_range(x, 0, 3000, 0, 255)" in err.value.message
    assert "value_range" in err.value.message
    assert not (tmp_path / "out.png").exists()


def test_an_animation_failing_on_a_later_date_leaves_no_file(tmp_path):
    stack = np.stack([levels(16, 16), levels(16, 16) * 40])  # the second date is unscaled
    for fmt in ("GIF", "MP4"):
        with pytest.raises(OpenEOError, match="they reach from .* Scale them"):
            write(fmt, cube_of(stack, dates=["2023-01-01", "2023-01-02"]), tmp_path)
        assert not list(tmp_path.iterdir())


def test_booleans_are_black_and_white(tmp_path):
    mask = np.array([[True, False], [False, True]])
    _, pixels = read_png(write("PNG", cube_of(mask), tmp_path))
    np.testing.assert_array_equal(pixels[..., 0], [[255, 0], [0, 255]])


def test_nodata_option_makes_those_pixels_transparent(tmp_path):
    values = np.array([[0, 10], [20, 0]], dtype="uint8")
    _, pixels = read_png(write("PNG", cube_of(values), tmp_path, nodata=0))
    np.testing.assert_array_equal(pixels[..., 3], [[0, 255], [255, 0]])
    np.testing.assert_array_equal(pixels[..., 0], [[0, 10], [20, 0]])


# --- what can't be drawn --------------------------------------------------------------------------------


def test_cube_with_five_bands_is_refused_before_computing():
    cube, _ = make_cube(bands=("B02", "B03", "B04", "B08", "B11"), size=16)
    with pytest.raises(OpenEOError) as err:
        get_output_format("PNG").check(cube, {})
    assert err.value.code == "FormatUnsuitable"
    assert "5 bands (B02, B03, B04, B08, B11)" in err.value.message
    assert "filter_bands" in err.value.message


def test_two_bands_are_refused():
    cube, _ = make_cube(bands=("B04", "B08"), size=16)
    with pytest.raises(OpenEOError, match="1 band .*3 .*or 4"):
        get_output_format("GIF").check(cube, {})


def test_still_image_refuses_several_dates_and_points_to_the_animations():
    cube, _ = make_cube(n_t=3, bands=("B04",), size=16)
    for fmt in ("PNG", "JPEG"):
        with pytest.raises(OpenEOError) as err:
            get_output_format(fmt).check(cube, {})
        assert err.value.code == "FormatUnsuitable"
        assert "3 dates (2023-01-01 … 2023-01-31)" in err.value.message
        assert "reduce_dimension" in err.value.message and "GIF or MP4" in err.value.message
    get_output_format("GIF").check(cube, {})  # one frame per date


def test_values_without_spatial_dimensions_are_refused():
    for value in (42, make_cube(bands=("B04",), size=4)[0].isel(x=0, y=0)):
        with pytest.raises(OpenEOError) as err:
            get_output_format("PNG").check(value, {})
        assert err.value.code == "FormatUnsuitable"
        assert "spatial dimensions" in err.value.message


def test_unknown_colour_map_is_format_argument_invalid_naming_some():
    with pytest.raises(FormatArgumentInvalid) as err:
        get_output_format("PNG").options({"colormap": "virdis"})
    assert "'virdis'" in err.value.message
    assert "did you mean viridis" in err.value.message
    assert "RdYlGn, RdYlBu" in err.value.message and "terrain" in err.value.message


def test_colour_map_names_ignore_case_and_common_ones_all_exist():
    assert get_output_format("GIF").options({"COLORMAP": "greys"})["colormap"] == "greys"
    np.testing.assert_array_equal(lookup_table("greys"), lookup_table("Greys"))
    for name in COMMON_COLOUR_MAPS:
        assert lookup_table(name).shape == (256, 4)


def test_colour_map_with_three_bands_is_format_argument_invalid():
    cube, _ = make_cube(bands=("B04", "B03", "B02"), size=8)
    with pytest.raises(FormatArgumentInvalid, match="colour map colours one band, and this has 3"):
        get_output_format("PNG").check(cube, {"colormap": "viridis"})


@pytest.mark.parametrize("value_range", [[3000, 0], [1, 1], [0, 1, 2], ["0", 3000]])
def test_value_range_must_be_min_below_max(value_range):
    with pytest.raises(FormatArgumentInvalid, match="value range"):
        get_output_format("PNG").options({"value_range": value_range})


def test_fps_is_checked():
    with pytest.raises(FormatArgumentInvalid, match="fps.*at most 50"):
        get_output_format("GIF").options({"fps": 100})


# --- the colouring as a pure function ------------------------------------------------------------------


def test_to_rgba_works_on_plain_arrays_tile_by_tile():
    values = levels(64, 64)
    colouring = Colouring(colormap="viridis", value_range=(10, 200))
    whole = to_rgba(values, colouring)
    tiles = np.concatenate([np.concatenate([to_rgba(values[r:r + 32, c:c + 32], colouring) for c in (0, 32)], axis=1)
                            for r in (0, 32)], axis=0)
    assert whole.shape == (64, 64, 4) and whole.dtype == np.uint8
    np.testing.assert_array_equal(whole, tiles)


def test_to_rgba_bounds_are_those_of_rounding():
    assert to_rgba(np.array([[-0.5, 255.49]]))[..., 0].tolist() == [[0, 255]]
    with pytest.raises(ValuesOutOfRange) as err:
        to_rgba(np.array([[-1.0, 12.0, 255.5]]))
    assert (err.value.lowest, err.value.highest) == (-1.0, 255.5)
    with pytest.raises(ValuesOutOfRange):
        to_rgba(np.array([[np.inf]]))


def test_to_rgba_refuses_band_counts_it_cannot_draw():
    with pytest.raises(ColouringError, match="2 bands"):
        to_rgba(np.zeros((2, 3, 3)))


def test_tile_pngs_decode_to_the_pixels_grey_as_la_and_colour_as_rgba():
    values = levels(40, 30).astype(np.float32)
    values[:5] = np.nan
    for colouring, mode in ((Colouring(), "LA"), (Colouring(colormap="viridis"), "RGBA")):
        rgba = to_rgba(values, colouring)
        image = Image.open(io.BytesIO(encode_rgba(rgba, "png")))
        assert (image.mode, image.size) == (mode, (30, 40))
        np.testing.assert_array_equal(np.asarray(image.convert("RGBA")), rgba)


# --- JPEG --------------------------------------------------------------------------------------------------


def test_jpeg_is_grey_for_one_band_and_black_at_nodata(tmp_path):
    values = np.full((64, 64), 200.0, dtype="float32")
    values[:16, :16] = np.nan
    target = write("JPEG", cube_of(values), tmp_path, quality=95)
    with Image.open(target) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (64, 64))
        pixels = np.asarray(image).astype(int)
    assert np.abs(pixels[20:, 20:] - 200).max() <= 2  # lossy, away from the edge
    assert np.abs(pixels[:12, :12]).max() <= 2


def test_jpeg_with_colour_map_is_rgb(tmp_path):
    values = np.full((32, 32), 128.0, dtype="float32")
    with Image.open(write("JPEG", cube_of(values), tmp_path, colormap="viridis")) as image:
        assert image.mode == "RGB"
        pixel = np.asarray(image)[16, 16].astype(int)
    assert np.abs(pixel - lookup_table("viridis")[128, :3]).max() <= 4


# --- GIF ----------------------------------------------------------------------------------------------------


def test_gif_has_one_frame_per_date_in_date_order(tmp_path):
    dates = ["2023-03-01", "2023-01-01", "2023-02-01"]  # not in order
    stack = np.stack([levels(50, 70, seed=s) for s in range(3)])
    target = write("GIF", cube_of(stack[:, None], dates=dates, bands=["B04"]), tmp_path, fps=4)
    frames, durations = gif_frames(target)
    assert len(frames) == 3
    for frame, i in zip(frames, (1, 2, 0), strict=True):  # January, February, March
        assert frame.shape == (50, 70, 3)
        np.testing.assert_array_equal(frame[..., 0], grey(stack[i]))  # one band: exact, no palette loss
    assert durations == [250, 250, 250]
    with Image.open(target) as image:
        assert image.info["loop"] == 0


def test_gif_with_colour_map_keeps_the_colours_exactly(tmp_path):
    stack = np.stack([levels(40, 40, seed=s) for s in range(2)])
    stack[0, :3, :3] = np.nan
    frames, _ = gif_frames(write("GIF", cube_of(stack, dates=["2023-01-01", "2023-01-02"]), tmp_path,
                                 colormap="RdYlGn"))
    table = lookup_table("RdYlGn")[:, :3]
    valid = ~np.isnan(stack[0])
    np.testing.assert_array_equal(frames[0][valid], table[grey(stack[0][valid])])
    assert (frames[0][:3, :3] == 0).all()  # nodata is black
    np.testing.assert_array_equal(frames[1], table[grey(stack[1])])


def test_gif_caption_writes_the_date_in_the_corner_only(tmp_path):
    stack = np.full((2, 1, 200, 200), 128.0, dtype="float32")
    cube = cube_of(stack, dates=["2023-05-04", "2023-05-14"], bands=["B04"])
    plain, _ = gif_frames(write("GIF", cube, tmp_path))
    captioned, _ = gif_frames(write("GIF", cube, tmp_path, caption=True))
    changed = (captioned[0] != plain[0]).any(axis=-1)
    rows, columns = np.nonzero(changed)
    assert changed.any() and rows.max() < 40 and columns.max() < 140  # a box in the top-left corner
    assert set(np.unique(captioned[0][changed])) <= {0, 255}  # white on black
    assert (captioned[0] != captioned[1]).any()  # each frame its own date


def test_captions_are_dates_with_the_time_only_where_two_share_a_day():
    times = np.array(["2023-05-04T10:30", "2023-05-14T10:30"], dtype="datetime64[ns]")
    assert frame_labels(times) == ["2023-05-04", "2023-05-14"]
    same_day = np.array(["2023-05-04T10:30", "2023-05-04T12:00"], dtype="datetime64[ns]")
    assert frame_labels(same_day) == ["2023-05-04 10:30", "2023-05-04 12:00"]
    assert frame_labels(np.array(["2023-djf", "2023-mam"])) == ["2023-djf", "2023-mam"]


def test_gif_of_three_bands_is_close_to_the_colours(tmp_path):
    y, x = np.mgrid[0:60, 0:60]
    noise = np.random.default_rng(0).normal(0, 6, (3, 60, 60))
    rgb = np.clip(np.stack([x * 4.2, y * 4.2, (x + y) * 2.1]) + noise, 0, 255).astype("float32")[None]
    frames, _ = gif_frames(write("GIF", cube_of(rgb, dates=["2023-01-01"], bands=["r", "g", "b"]), tmp_path))
    error = np.abs(frames[0].astype(int) - np.moveaxis(grey(rgb[0]), 0, -1).astype(int))
    assert error.mean() < 6  # 256 colours chosen by median cut for 3,600 different ones


def test_gif_of_a_cube_without_time_is_one_frame(tmp_path):
    frames, _ = gif_frames(write("GIF", cube_of(levels(16, 16)), tmp_path))
    assert len(frames) == 1


def test_gif_delay_is_in_hundredths_of_a_second():
    assert (gif_delay(2), gif_delay(30), gif_delay(50), gif_delay(0.01)) == (50, 3, 2, 10000)


def test_gif_of_30_dates_of_512_squared_is_computed_frame_by_frame(tmp_path):
    n_t, size = 30, 512
    computed: list[int] = []
    lock = threading.Lock()

    def block(block_info=None):
        info = block_info[None]
        with lock:
            computed.append(info["chunk-location"][0])
        return np.full(info["chunk-shape"], 8 * info["chunk-location"][0], dtype="float32")

    def cube(n_t):
        # three bands, 4 blocks of 256² a date: at 30 dates 94 MB of float32, and 31 MB of RGBA frames
        data = da.map_blocks(block, dtype="float32", chunks=((1,) * n_t, (3,), (256, 256), (256, 256)))
        dates = [f"2023-01-{d:02d}" for d in range(1, n_t + 1)]
        return new_cube(data, {"t": ("temporal", dates), "bands": ("bands", ["r", "g", "b"]),
                               "y": ("spatial", Y0 - 5 - 10 * np.arange(size)),
                               "x": ("spatial", X0 + 5 + 10 * np.arange(size))}, crs=32632)

    write("GIF", cube(1), tmp_path)  # once before measuring: the first computation imports modules
    computed.clear()
    tracemalloc.start()
    try:
        target = write("GIF", cube(n_t), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # every block once, in date order up to the blocks iter_blocks keeps in flight (threads may start
    # the blocks of two neighbouring dates in either order)
    assert sorted(computed) == [d for d in range(n_t) for _ in range(4)]
    in_flight = max(2, 2 * (os.cpu_count() or 2))
    assert all(max(computed[:k + 1]) - computed[k] <= in_flight // 4 + 1 for k in range(len(computed)))
    # what may be held at once: the blocks iter_blocks keeps in flight (and being copied), two frames
    # of RGBA and their colouring's temporaries — never all dates
    block_bytes, frame_bytes = 3 * 256 * 256 * 4, size * size * 4
    bound = 2 * in_flight * block_bytes + 4 * frame_bytes + 4 * 2**20
    assert peak < bound, f"peak {peak / 2**20:.1f} MB, bound {bound / 2**20:.1f} MB"
    frames, _ = gif_frames(target)
    assert len(frames) == n_t
    assert [int(frame[100, 100, 0]) for frame in frames] == [8 * i for i in range(n_t)]


def test_dates_of_one_large_time_chunk_are_computed_in_parts_in_order(tmp_path, monkeypatch):
    from processes.formats import frames

    stack = np.stack([np.full((32, 32), 10.0 * (i + 1), dtype="float32") for i in range(6)])
    cube = cube_of(stack, dates=[f"2023-01-0{d}" for d in range(1, 7)])
    cube = cube.chunk({"t": 6})  # all dates in one block, as after a reduction along time
    monkeypatch.setattr(frames, "GROUP_BYTES", 2 * 32 * 32 * 4)  # two frames at a time
    got, _ = gif_frames(write("GIF", cube, tmp_path))
    assert [int(frame[5, 5, 0]) for frame in got] == [10, 20, 30, 40, 50, 60]


def test_a_batch_job_sees_the_progress_of_the_whole_animation(tmp_path):
    from processes.formats.blocks import ProgressMeter, progress_meter

    reports: list[float] = []
    stack = np.stack([levels(64, 64, seed=s) for s in range(10)])
    token = progress_meter.set(ProgressMeter(reports.append))
    try:
        write("GIF", cube_of(stack, dates=[f"2023-01-{d:02d}" for d in range(1, 11)], chunks=32), tmp_path)
    finally:
        progress_meter.reset(token)
    assert reports == sorted(reports) and reports[-1] == 99.0
    assert reports[0] <= 10.0  # 40 blocks of one output, not 10 outputs of 4 blocks each


# --- MP4 ----------------------------------------------------------------------------------------------------


def test_mp4_has_one_frame_per_date_padded_to_even_size(tmp_path):
    dates = ["2023-01-01", "2023-01-11", "2023-01-21", "2023-01-31"]
    shades = [20, 90, 160, 230]
    stack = np.stack([np.full((33, 47), shade, dtype="float32") for shade in shades])
    frames, rate, codec = mp4_frames(write("MP4", cube_of(stack, dates=dates), tmp_path, fps=5))
    assert codec == "h264" and rate == 5
    assert len(frames) == 4
    for frame, shade in zip(frames, shades, strict=True):
        assert frame.shape == (34, 48, 3)  # H.264 needs even sizes: one black row and column added
        assert np.abs(frame[4:28, 4:40].astype(int) - shade).max() <= 3  # lossy, colour-converted
        assert frame[33, 10].max() <= 20


def test_mp4_colours_of_a_colour_map(tmp_path):
    stack = np.full((2, 32, 32), 200.0, dtype="float32")
    frames, _, _ = mp4_frames(write("MP4", cube_of(stack, dates=["2023-01-01", "2023-01-02"]), tmp_path,
                                    colormap="viridis"))
    assert np.abs(frames[1][16, 16].astype(int) - lookup_table("viridis")[200, :3]).max() <= 6


# --- batch jobs --------------------------------------------------------------------------------------------


def test_a_batch_job_writes_one_animation_file(tmp_path):
    from backend.jobs.results import save_job_result
    from processes.library.save_result import save_result

    stack = np.stack([levels(16, 16, seed=s) for s in range(3)])
    value = save_result(cube_of(stack, dates=["2023-01-01", "2023-01-02", "2023-01-03"]), "gif")
    written = save_job_result(value, tmp_path / "job")
    assert [p.name for p in written] == ["result.gif"]
    assert len(gif_frames(written[0])[0]) == 3
