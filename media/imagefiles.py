"""The compositor's image files through OpenImageIO: OpenEXR (half and float), DPX (8, 10, 12 and 16-bit) and
TIFF (8, 16-bit and float), read and written with their samples untouched.

Floats stay floats: linear values above 1 and below 0 pass through as they are, never clipped. Half EXRs are read
as float32 (every half is exactly a float32) and written back as half, so they round-trip bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vinpaint.errors import InputError

OIIO_READS = (".exr", ".dpx")
"""Extensions read through OpenImageIO (the others through OpenCV, as before)."""
SAMPLE_TYPES = ("uint8", "uint16", "half", "float")


def _oiio():
    import OpenImageIO

    return OpenImageIO


def read_image_file(path: Path, dropped: list[str] | None = None,
                    matte: bool = False) -> tuple[np.ndarray, str]:
    """One EXR/DPX/TIFF file -> ([H,W,3] uint8, uint16 or float32, its sample type: one of SAMPLE_TYPES).

    The picture is the display window: an EXR whose data window differs (an autocropped roto shape, an overscan
    plate) is placed in it, black (zero) where the file has no data, cropped where it has data beyond.
    RGB channels are taken by name (R, G, B), grey (Y) and a lone alpha (A) are made RGB, other channels dropped
    (the file's name is appended to `dropped` when that drops an alpha that is not opaque everywhere). `matte`:
    a mask, whose alpha, where it is not opaque everywhere, is the matte (roto tools write black RGB).
    Raises InputError naming the file when it cannot be read or holds NaN or infinite samples."""
    oiio = _oiio()
    image = oiio.ImageInput.open(str(path))
    if image is None:
        reason = oiio.geterror().replace(f"{path}", "").strip(" :()") or "not an image"
        raise InputError(f"cannot read image {path}: {_short(reason)}.")
    try:
        spec = image.spec()
        kind = str(spec.format)
        if kind in ("half", "float", "double"):
            wanted, sample = "float", ("half" if kind == "half" else "float")
        elif kind in ("uint8", "int8"):
            wanted, sample = "uint8", "uint8"
        else:  # 10, 12 and 16-bit DPX and TIFF: OpenImageIO scales them to the full 16-bit range
            wanted, sample = "uint16", "uint16"
        pixels = image.read_image(0, 0, 0, spec.nchannels, wanted)
        if pixels is None or spec.nchannels < 1:
            raise InputError(f"cannot read image {path}: {_short(image.geterror() or 'no pixels')}.")
        names = main_layer(path, [str(n) for n in spec.channelnames])
    finally:
        image.close()
    pixels = np.asarray(pixels).reshape(spec.height, spec.width, spec.nchannels)  # the data window's
    opaque = 1.0 if wanted == "float" else np.iinfo(pixels.dtype).max
    see_through = len(names) >= 2 and "A" in names and pixels[:, :, names.index("A")].min() < opaque
    if matte and see_through:  # the matte, not an alpha dropped
        pixels, names, dropped = pixels[:, :, [names.index("A")]], ["A"], None
    if all(c in names for c in "RGB"):
        rgb = pixels[:, :, [names.index(c) for c in "RGB"]]
    elif pixels.shape[2] >= 3:
        rgb = pixels[:, :, :3]
    else:
        rgb = np.repeat(pixels[:, :, :1], 3, axis=2)
    if dropped is not None and see_through:  # RGBA, or grey and alpha
        dropped.append(path.name)
    rgb = _in_display_window(rgb, spec)  # after the alpha was judged: the black around the data is not see-through
    rgb = np.ascontiguousarray(rgb, dtype={"uint8": np.uint8, "uint16": np.uint16}.get(wanted, np.float32))
    if rgb.dtype == np.float32 and not np.isfinite(rgb).all():
        bad = int((~np.isfinite(rgb)).any(axis=2).sum())
        raise InputError(f"image {path} has {bad} pixels that are NaN or infinite; clean them up in the "
                         "compositor first (the model cannot learn from them).")
    return rgb, sample


BEAUTY_LAYERS = ("rgba", "rgb", "beauty", "combined")
"""The names a renderer gives the picture itself among its passes (Nuke's rgba, Blender's ViewLayer.Combined)."""


def main_layer(path: Path, channels: list[str]) -> list[str]:
    """Channel names with their layer taken off for the image's main layer ("" for another layer's): the unnamed
    R, G, B (or Y), else the only layer holding R, G and B, or the one named as a beauty pass (BEAUTY_LAYERS).
    Taking every layer's last part, a file of albedo.RGB and beauty.RGB was read as its albedo pass, and another
    layer's A as the frame's alpha."""
    parts = [(name.rpartition(".")[0], name.rpartition(".")[2].upper()) for name in channels]
    main = ""
    if not any(layer == "" and name in ("R", "G", "B", "Y") for layer, name in parts):
        whole = sorted({layer for layer, _ in parts if layer and all((layer, c) in parts for c in "RGB")})
        beauty = [layer for layer in whole if layer.rpartition(".")[2].lower() in BEAUTY_LAYERS]
        whole = beauty if len(beauty) == 1 else whole
        if len(whole) > 1:
            raise InputError(f"image {path} holds no unnamed R, G, B channels but the layers {', '.join(whole)}; "
                             "vinpaint reads the main (unnamed) layer, so write the plate with its beauty pass as "
                             "the main layer.")
        main = whole[0] if whole else ""
    return [name if layer == main else "" for layer, name in parts]


def _in_display_window(pixels: np.ndarray, spec) -> np.ndarray:
    """[h,w,c] pixels of the data window -> those of the display window (the same array where they agree)."""
    data = (spec.x, spec.y, spec.width, spec.height)
    full = (spec.full_x, spec.full_y, spec.full_width, spec.full_height)
    if data == full or spec.full_width <= 0 or spec.full_height <= 0:
        return pixels
    out = np.zeros((spec.full_height, spec.full_width, pixels.shape[2]), pixels.dtype)
    x0, y0 = max(spec.x, spec.full_x), max(spec.y, spec.full_y)
    x1 = min(spec.x + spec.width, spec.full_x + spec.full_width)
    y1 = min(spec.y + spec.height, spec.full_y + spec.full_height)
    if x0 < x1 and y0 < y1:
        out[y0 - spec.full_y:y1 - spec.full_y, x0 - spec.full_x:x1 - spec.full_x] = \
            pixels[y0 - spec.y:y1 - spec.y, x0 - spec.x:x1 - spec.x]
    return out


def write_image_file(path: Path, image: np.ndarray, sample: str, mark: str, format_path: Path | None = None) -> None:
    """[H,W,3] frame -> one EXR/DPX/TIFF file at `path` holding `sample` samples, tagged with `mark` (the
    Software attribute). `format_path` names the format when `path` is a temporary name."""
    oiio = _oiio()
    if sample not in SAMPLE_TYPES:
        raise ValueError(f"unknown sample type {sample}")
    if image.dtype == np.uint8 and sample in ("half", "float"):
        image = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16 and sample in ("half", "float"):
        image = image.astype(np.float32) / 65535.0
    elif image.dtype != {"uint8": np.uint8, "uint16": np.uint16}.get(sample, np.float32):
        raise ValueError(f"cannot write {image.dtype} frames as {sample} samples")
    height, width = image.shape[:2]
    output = oiio.ImageOutput.create(str(format_path or path))
    if output is None:
        raise OSError(f"cannot write {path}: {oiio.geterror()}")
    spec = oiio.ImageSpec(width, height, 3, sample)
    spec.attribute("Software", mark)
    suffix = Path(format_path or path).suffix.lower()
    if suffix in (".exr", ".tif", ".tiff"):
        spec.attribute("compression", "zip")
    pixels = np.ascontiguousarray(image.astype(np.float16) if sample == "half" else image)
    try:
        if not output.open(str(path), spec) or not output.write_image(pixels):
            raise OSError(f"cannot write {path}: {_short(output.geterror() or 'the image library refused it')}")
    finally:
        output.close()


def is_marked(path: Path, mark: str) -> bool:
    """True when the image file at `path` carries `mark` in its Software attribute."""
    oiio = _oiio()
    image = oiio.ImageInput.open(str(path))
    if image is None:
        oiio.geterror()
        return False
    try:
        return image.spec().get_string_attribute("Software") == mark
    finally:
        image.close()


def _short(text: str) -> str:
    return " ".join(str(text).split())[:200].rstrip(".")
