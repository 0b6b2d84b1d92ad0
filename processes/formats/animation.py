"""GIF and MP4: a raster cube as an animation, one frame per date in date order.

Frames are the cube's own pixel grid, north up, coloured by ``processes.formats.colour`` exactly as
PNG pictures are, except that neither format keeps alpha: nodata and transparent pixels are
composited over black. An optional caption writes each frame's date in its top-left corner
(Pillow's default font, white on black).

Both are written frame by frame: ``processes.formats.frames`` computes a group of dates at a time
(normally one) and each frame is encoded and written as soon as it is coloured, so a year of dates
in a batch job never sits in memory.

- **GIF** (animated, looping): each frame has its own 256-colour palette; a frame with at most 256
  colours (one band, grey or a colour map) keeps them exactly, others (RGB) are reduced by median
  cut. GIF delays are hundredths of a second, so ``fps`` is rounded to 100/n. Pillow's GIF writer
  keeps every frame until it closes the file, so the file is written here from Pillow's frame
  encoder (:func:`PIL.GifImagePlugin.getdata`) with the header and loop extension written directly.
- **MP4**: H.264 (libx264 through PyAV, whose wheels bring FFmpeg), yuv420p with BT.709 colours,
  ``+faststart`` for playback while downloading. H.264 needs an even width and height: an odd one is
  padded with one black column or row at the right or bottom.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
import xarray as xr
from av.video.reformatter import ColorRange, Colorspace
from PIL import GifImagePlugin, Image, ImageDraw, ImageFont

from processes.formats.colour import without_alpha
from processes.formats.frames import (
    COLOUR_PARAMETERS,
    Picture,
    PictureFormat,
    colouring_of,
    picture,
    picture_problem,
    rgba_frames,
)

GIF_MAX_SIDE = 65_535
"""GIF's largest width or height (16-bit sizes)."""
H264_CRF = 18
"""libx264's constant rate factor: 18 is visually lossless for maps, at a fraction of lossless size."""
_BT709 = 1  # the ITU-T H.273 code of BT.709 primaries and transfer characteristics


def _parameters(fps_maximum: float) -> dict[str, dict[str, Any]]:
    return {
        **COLOUR_PARAMETERS,
        "fps": {
            "type": "number",
            "description": "Frames (dates) per second.",
            "minimum": 0.01,
            "maximum": fps_maximum,
            "default": 2,
        },
        "caption": {
            "type": "boolean",
            "description": "Write each frame's date (`YYYY-MM-DD`; with the time in UTC where two dates share a "
            "day) in its top-left corner, white on black.",
            "default": False,
        },
    }


def _frames(cube: xr.DataArray, format_name: str, options: Mapping[str, Any]) -> tuple[Picture, Iterator[np.ndarray]]:
    """The cube arranged for drawing, and its frames as RGB ``(height, width, 3)`` uint8, captioned if asked."""
    drawn = picture(cube, format_name, animated=True)
    colouring = colouring_of(format_name, options)

    def frames() -> Iterator[np.ndarray]:
        for label, rgba in zip(drawn.labels, rgba_frames(drawn, colouring, format_name), strict=True):
            rgb = without_alpha(rgba)
            yield with_caption(rgb, label) if options.get("caption") and label else rgb

    return drawn, frames()


def with_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """``rgb`` with ``text`` in white on a black box in its top-left corner (sized to the picture)."""
    image = Image.fromarray(rgb)
    size = max(10, min(image.width, image.height) // 24)
    margin = max(2, size // 4)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # no anti-aliasing: only black and white join the colours (GIF palettes stay exact)
    left, top, right, bottom = draw.textbbox((margin, margin), text, font=font)
    draw.rectangle((0, 0, right + margin, bottom + margin), fill=(0, 0, 0))
    draw.text((margin, margin), text, font=font, fill=(255, 255, 255))
    return np.asarray(image)


@contextmanager
def _removed_on_failure(target: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        target.unlink(missing_ok=True)
        raise


# --- GIF ---------------------------------------------------------------------------------------------


def gif_delay(fps: float) -> int:
    """The delay between frames in hundredths of a second (GIF's unit) closest to ``fps``."""
    return int(min(65_535, max(2, round(100 / fps))))  # browsers treat delays below 2 as 10


def write_gif(cube: xr.DataArray, target: Path, options: Mapping[str, Any]) -> None:
    drawn, frames = _frames(cube, "GIF", options)
    delay = gif_delay(float(options["fps"]))
    with _removed_on_failure(target), open(target, "wb") as file:
        _write_gif_header(file, drawn.width, drawn.height)
        for rgb in frames:
            # median cut keeps the colours exactly when a frame has at most 256
            frame = Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT)
            for data in GifImagePlugin.getdata(frame, include_color_table=True, duration=delay * 10):
                file.write(data)
        file.write(b";")  # trailer


def _write_gif_header(file: IO[bytes], width: int, height: int) -> None:
    """GIF89a header without a global colour table (every frame has its own), looping forever."""
    file.write(b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0))
    # NETSCAPE2.0 application extension: loop count 0 = forever
    file.write(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00")


def _accepts_gif(value: Any) -> str | None:
    problem = picture_problem(value, "GIF", animated=True)
    if problem is None and max(value.shape[-2:]) > GIF_MAX_SIDE:
        return f"GIF animations are at most {GIF_MAX_SIDE} pixels wide and high; use MP4, or GTiff per date."
    return problem


# --- MP4 ---------------------------------------------------------------------------------------------


def write_mp4(cube: xr.DataArray, target: Path, options: Mapping[str, Any]) -> None:
    drawn, frames = _frames(cube, "MP4", options)
    width, height = drawn.width + drawn.width % 2, drawn.height + drawn.height % 2
    with _removed_on_failure(target), av.open(str(target), "w", format="mp4",
                                              options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(float(options["fps"])).limit_denominator(1001))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(H264_CRF)}
        context = stream.codec_context
        context.colorspace, context.color_range = Colorspace.ITU709, ColorRange.MPEG
        context.color_primaries, context.color_trc = _BT709, _BT709
        for rgb in frames:
            if (width, height) != (drawn.width, drawn.height):
                rgb = np.pad(rgb, ((0, height - drawn.height), (0, width - drawn.width), (0, 0)))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):  # flush the encoder's delayed frames
            container.mux(packet)


GIF = PictureFormat(
    name="GIF",
    title="Animated GIF",
    description=(
        "An animation of a raster data cube: one frame per date in date order (one frame without a time "
        "dimension), each the cube's own pixel grid, north up, looping. Frames are coloured as PNG pictures "
        "(one band grey or `colormap`, three bands RGB, four RGBA over black; values drawn as they are in 0–255, "
        "or scaled by `value_range`); NaN pixels are black. At most 256 colours a frame: three-band frames "
        "are reduced by median cut. `caption` writes each frame's date."
    ),
    gis_data_types=("raster",),
    media_type="image/gif",
    extension="gif",
    writer=write_gif,
    accepts=_accepts_gif,
    parameters=_parameters(fps_maximum=50),
)
MP4 = PictureFormat(
    name="MP4",
    title="MP4 video (H.264)",
    description=(
        "A video of a raster data cube: one frame per date in date order, each the cube's own pixel grid "
        "(padded to an even width and height), north up. Frames are coloured as PNG pictures (one band grey "
        "or `colormap`, three bands RGB, four RGBA over black; values drawn as they are in 0–255, or scaled by "
        "`value_range`); NaN pixels are black. H.264, yuv420p. `caption` writes each frame's date."
    ),
    gis_data_types=("raster",),
    media_type="video/mp4",
    extension="mp4",
    writer=write_mp4,
    accepts=functools.partial(picture_problem, format_name="MP4", animated=True),
    parameters=_parameters(fps_maximum=120),
)
