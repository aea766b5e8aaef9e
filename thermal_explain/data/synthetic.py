"""Synthetic thermal faces with known lesion masks (``thermal-explain synth``).

Faces are built as a temperature field in degrees Celsius, then passed through sensor
noise, optical blur and a thermal palette, so the images look like the cropped
infrared faces the project explains. ICAS faces carry one one-sided temperature
anomaly whose exact region is written as a mask, which gives Grad-CAM maps a ground
truth to be scored against. The measured temperatures themselves can be written instead
of the pictures (``.npy`` degrees or 16-bit centi-Kelvin TIFF), with ``lesions.csv``
naming each lesion's side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from thermal_explain.checks import check_choice, check_int, check_number
from thermal_explain.data.temperature_files import (
    LESION_TABLE,
    TEMPERATURE_FORMATS,
    lesion_side,
    write_lesion_table,
    write_temperatures,
)
from thermal_explain.errors import ConfigurationError

CLASS_NAMES: tuple[str, str] = ("icas", "normal")
"""Class folder names, in label order (sorted, as the data module infers them)."""

LESION_AREA_RANGE: tuple[float, float] = (0.02, 0.05)
"""Lesion area as a fraction of the head oval's area (uniformly drawn)."""

LESION_DELTA_RANGE: tuple[float, float] = (1.5, 3.0)
"""Peak temperature change of a lesion in degrees Celsius (warmer or cooler)."""

LESION_POLARITIES = ("either", "cold", "warm")
"""Lesions warmer or cooler at random (``either``), or all cold, or all warm."""

MIN_SIZE = 16
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff")

_FACE_NAME = re.compile(r"face_\d{5,}$")

# Lesion centres in face coordinates (x, y in units of the oval's half-width/half-height,
# x measured outwards from the midline, y downwards from the oval's centre). Every x is
# above the largest lesion semi-axis (sqrt(0.05 * 1.4) < 0.27), so no lesion crosses the
# facial midline.
_LESION_SITES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "cheek": ((0.35, 0.62), (0.0, 0.35)),
    "periorbital": ((0.3, 0.55), (-0.28, -0.08)),
    "temple": ((0.62, 0.78), (-0.45, -0.2)),
    "forehead": ((0.3, 0.52), (-0.62, -0.42)),
}


@dataclass
class SyntheticDataset:
    """Where a synthetic data set was written.

    Attributes:
        image_dir: ``<out>/images``; one sub-folder per class (``icas``, ``normal``).
        mask_dir: ``<out>/masks``; mirrors ``image_dir`` with ``<stem>.png`` lesion masks
            (255 = lesion). Only ICAS faces have a mask file: a normal face has no region
            to localize.
        paths: every image, sorted by face number.
        labels: class index of each image in ``class_names`` order.
        mask_paths: the mask of each image, ``None`` for normal faces.
        counts: images per class name.
        class_names: ``["icas", "normal"]``.
        lesion_sides: ``left``/``right`` (image halves) of each image's lesion, ``None``
            for normal faces; also written to ``<out>/lesions.csv``.
    """

    image_dir: Path
    mask_dir: Path
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    mask_paths: list[Path | None] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    lesion_sides: list[str | None] = field(default_factory=list)


def render_face(rng: np.random.Generator, size: int, lesion: bool) -> tuple[np.ndarray, np.ndarray]:
    """Render one synthetic thermal face (see :func:`render_face_temperatures`).

    Returns:
        ``(S, S, 3)`` uint8 RGB image and ``(S, S)`` uint8 mask.
    """
    image, _, mask = render_face_temperatures(rng, size, lesion)
    return image, mask


def render_face_temperatures(
    rng: np.random.Generator, size: int, lesion: bool, lesion_polarity: str = "either"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one synthetic thermal face, as a picture and as measured temperatures.

    A warm oval head (33-35 C) on a cool background (21-26 C): warm periorbital regions
    and inner canthi, a cool nose tip, a warm forehead and mouth line, cool hair, ears
    and a neck, with subject-to-subject variation of pose (tilt, yaw, height, size;
    the facial midline stays within 1 % of the image centre, as in crops made for the
    asymmetry split), temperatures and feature strengths, plus mild natural left/right
    differences and smooth skin-temperature noise. With ``lesion`` one side carries an
    elliptical anomaly (warmer or cooler by 1.5-3.0 C at its peak, as
    ``lesion_polarity`` says) in one cheek,
    periorbital region, temple or forehead side, never crossing the midline; its area
    is 2-5 % of the head oval's area (:data:`LESION_AREA_RANGE`). Sensor noise and blur
    are added and the field is drawn with the inferno palette. The lesion is drawn from
    its own stream, so the same ``rng`` state gives the same subject and noise with or
    without it.

    Returns:
        ``(S, S, 3)`` uint8 RGB image, ``(S, S)`` float32 measured temperatures (degrees
        Celsius, after noise and blur) and ``(S, S)`` uint8 mask (255 on the lesion, all
        zeros without one).
    """
    check_int("size", size, MIN_SIZE)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    u, v = np.meshgrid(grid, grid)
    head = _draw_head(rng)
    xf, yf = _face_coordinates(u, v, head)
    temperature = _face_temperature(rng, u, v, xf, yf, head)
    lesion_rng = np.random.default_rng(rng.integers(2**63))  # drawn either way: same subject
    mask = np.zeros((size, size), dtype=np.uint8)
    if lesion:
        delta, region = _lesion(lesion_rng, xf, yf, lesion_polarity)
        temperature += delta
        mask[region] = 255
    image, measured = _sensor(rng, temperature, size)
    return image, measured, mask


def make_synthetic_dataset(
    out_dir: str | Path,
    n: int = 400,
    size: int = 128,
    seed: int = 0,
    icas_fraction: float = 0.5,
    ext: str = "png",
    *,
    lesion_polarity: str = "either",
    temperatures: str | None = None,
) -> SyntheticDataset:
    """Write ``n`` synthetic faces and their lesion masks under ``out_dir``.

    Layout: ``<out>/images/{icas,normal}/face_00000.<ext>`` (one global numbering, so
    stems are unique across classes) and ``<out>/masks/icas/face_00000.png``.
    ``round(n * icas_fraction)`` faces are ICAS, placed at seeded random positions.
    The output is byte-for-byte the same for the same arguments; ``face_<digits>``
    files left in the class folders by an earlier, different run are removed so the
    folders hold exactly this data set. With ``temperatures`` (``npy`` or ``tiff``) the
    images are the measured temperatures instead (``.npy`` float degrees, or 16-bit
    centi-Kelvin ``.tif``: read it with ``--temperature_scale centikelvin``).
    ``<out>/lesions.csv`` names every face's lesion side (and polarity).

    Raises:
        ConfigurationError: ``n < 1``, ``size`` below 16, ``icas_fraction`` outside 0..1,
            an unknown ``ext``, ``lesion_polarity`` or ``temperatures``.
    """
    check_set_arguments(n, size, icas_fraction, ext)
    check_choice("lesion_polarity", lesion_polarity, LESION_POLARITIES)
    if temperatures is not None:
        check_choice("temperatures", temperatures, tuple(TEMPERATURE_FORMATS))
    root = Path(out_dir)
    dataset = SyntheticDataset(image_dir=root / "images", mask_dir=root / "masks")
    for name in CLASS_NAMES:
        (dataset.image_dir / name).mkdir(parents=True, exist_ok=True)
    (dataset.mask_dir / CLASS_NAMES[0]).mkdir(parents=True, exist_ok=True)
    n_icas = round(n * icas_fraction)
    order = np.random.default_rng(seed).permutation(n)
    is_icas = np.zeros(n, dtype=bool)
    is_icas[order[:n_icas]] = True
    suffix = TEMPERATURE_FORMATS[temperatures] if temperatures else "." + ext.lower()
    lesions = []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        image, celsius, mask = render_face_temperatures(
            rng, size, bool(is_icas[index]), lesion_polarity
        )
        label = 0 if is_icas[index] else 1
        stem = f"face_{index:05d}"
        path = dataset.image_dir / CLASS_NAMES[label] / f"{stem}{suffix}"
        if temperatures:
            write_temperatures(path, celsius)
        else:
            _write_image(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        side = lesion_side(mask)
        dataset.lesion_sides.append(side)
        polarity = None if side is None else _polarity(celsius, mask)
        lesions.append(
            {"image": path.name, "class": CLASS_NAMES[label], "lesion_side": side,
             "lesion_polarity": polarity}
        )  # fmt: skip
        mask_path = None
        if is_icas[index]:
            mask_path = dataset.mask_dir / CLASS_NAMES[0] / f"{stem}.png"
            _write_image(mask_path, mask)
        dataset.paths.append(path)
        dataset.labels.append(label)
        dataset.mask_paths.append(mask_path)
    dataset.counts = {CLASS_NAMES[0]: n_icas, CLASS_NAMES[1]: n - n_icas}
    write_lesion_table(root / LESION_TABLE, lesions)
    _remove_stale(dataset)
    return dataset


def _polarity(celsius: np.ndarray, mask: np.ndarray) -> str:
    """``cold`` when the lesion is colder than its mirror region on the other side."""
    inside = mask != 0
    return "cold" if celsius[inside].mean() < celsius[:, ::-1][inside].mean() else "warm"


@dataclass(frozen=True)
class _Head:
    """Pose of one subject's head, in image fractions (0..1)."""

    cx: float
    cy: float
    half_width: float
    half_height: float
    roll: float
    yaw: float


def _draw_head(rng: np.random.Generator) -> _Head:
    """Pose of one face crop.

    The facial midline lies within 1 % of the image centre (crops are centred so for the
    asymmetry split), the head varies in height position and size, tilts up to 3 degrees
    and turns slightly (yaw shifts the inner features sideways).
    """
    half_width = rng.uniform(0.29, 0.33)
    return _Head(
        cx=rng.uniform(0.49, 0.51),
        cy=rng.uniform(0.44, 0.5),
        half_width=half_width,
        half_height=half_width * rng.uniform(1.24, 1.34),
        roll=np.deg2rad(rng.uniform(-3.0, 3.0)),
        yaw=rng.uniform(-0.04, 0.04),
    )


def _face_coordinates(u: np.ndarray, v: np.ndarray, head: _Head) -> tuple[np.ndarray, np.ndarray]:
    """Image fractions ``(S, S)`` -> face coordinates (unit circle = head oval)."""
    du, dv = u - head.cx, v - head.cy
    cos, sin = np.cos(head.roll), np.sin(head.roll)
    xf = (du * cos + dv * sin) / head.half_width
    yf = (-du * sin + dv * cos) / head.half_height
    return xf.astype(np.float32), yf.astype(np.float32)


def _blob(xf: np.ndarray, yf: np.ndarray, x: float, y: float, sx: float, sy: float) -> np.ndarray:
    """Gaussian bump of height 1 centred at ``(x, y)`` in face coordinates."""
    return np.exp(-(((xf - x) / sx) ** 2 + ((yf - y) / sy) ** 2) * 0.5)


def _pair(
    rng: np.random.Generator,
    xf: np.ndarray,
    yf: np.ndarray,
    x: float,
    y: float,
    sx: float,
    sy: float,
    amplitude: float,
) -> np.ndarray:
    """A left/right pair of bumps with slightly different strengths (natural variation)."""
    left, right = amplitude * rng.uniform(0.9, 1.1, size=2)
    return left * _blob(xf, yf, -x, y, sx, sy) + right * _blob(xf, yf, x, y, sx, sy)


def _face_temperature(
    rng: np.random.Generator,
    u: np.ndarray,
    v: np.ndarray,
    xf: np.ndarray,
    yf: np.ndarray,
    head: _Head,
) -> np.ndarray:
    """Temperature field ``(S, S)`` in degrees Celsius of one face without lesion."""
    background = rng.uniform(21.0, 26.0) + rng.uniform(-1.0, 1.0) * (u - 0.5)
    background = background + rng.uniform(-0.6, 0.6) * (v - 0.5)
    skin = rng.uniform(33.0, 35.0)
    radius = np.sqrt(xf**2 + yf**2)
    inner = xf - head.yaw  # features follow the yaw, the outline does not
    face = skin - 1.6 * radius**4
    face += rng.uniform(0.2, 0.6) * _blob(inner, yf, 0.0, -0.5, 0.45, 0.22)  # forehead
    face += _pair(rng, inner, yf, 0.38, -0.14, 0.17, 0.1, rng.uniform(0.6, 1.2))  # orbits
    face += _pair(rng, inner, yf, 0.16, -0.12, 0.06, 0.05, rng.uniform(1.0, 1.8))  # canthi
    face += _pair(rng, inner, yf, 0.42, -0.14, 0.08, 0.04, -rng.uniform(0.3, 0.8))  # eyes
    face += _pair(rng, inner, yf, 0.5, 0.18, 0.2, 0.16, -rng.uniform(0.2, 0.6))  # cheeks
    face -= rng.uniform(1.0, 2.5) * _blob(inner, yf, 0.0, 0.22, 0.11, 0.1)  # nose tip
    face += rng.uniform(0.3, 0.9) * _blob(inner, yf, 0.0, 0.5, 0.28, 0.05)  # mouth
    face += _skin_noise(rng, xf, yf)
    hairline = rng.uniform(-0.86, -0.7)
    hair = _sigmoid((hairline - yf) / 0.05)
    face = face * (1 - hair) + rng.uniform(27.0, 30.5) * hair
    ears = _pair(rng, xf, yf, 1.02, -0.1, 0.07, 0.16, 1.0).clip(0, 1)
    neck_width = rng.uniform(0.45, 0.6)
    neck = _sigmoid((neck_width - np.abs(xf)) / 0.04) * _sigmoid((yf - 0.8) / 0.05)
    head_mask = _sigmoid((1.0 - radius) / 0.025)
    field_ = background * (1 - head_mask) + face * head_mask
    field_ = field_ * (1 - ears) + (skin - rng.uniform(1.5, 3.0)) * ears
    neck = neck * (1 - head_mask)
    return field_ * (1 - neck) + (skin - rng.uniform(0.5, 1.5)) * neck


def _skin_noise(rng: np.random.Generator, xf: np.ndarray, yf: np.ndarray) -> np.ndarray:
    """Smooth low-amplitude skin temperature variation (a few broad bumps, +-0.3 C)."""
    noise = np.zeros_like(xf)
    for _ in range(4):
        x, y = rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8)
        spread = rng.uniform(0.25, 0.5)
        noise += rng.uniform(-0.3, 0.3) * _blob(xf, yf, x, y, spread, spread)
    return noise


def _lesion(
    rng: np.random.Generator, xf: np.ndarray, yf: np.ndarray, polarity: str = "either"
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided anomaly: temperature change ``(S, S)`` and its bool region ``(S, S)``.

    The sign is drawn whatever ``polarity`` says, so the stream (and every other draw)
    stays the same; ``cold`` and ``warm`` then fix it.
    """
    site = list(_LESION_SITES)[rng.integers(len(_LESION_SITES))]
    (x_low, x_high), (y_low, y_high) = _LESION_SITES[site]
    side = 1.0 if rng.random() < 0.5 else -1.0
    x, y = side * rng.uniform(x_low, x_high), rng.uniform(y_low, y_high)
    area = rng.uniform(*LESION_AREA_RANGE)  # of the unit circle, i.e. of the oval
    aspect = rng.uniform(0.7, 1.4)
    axis_a, axis_b = np.sqrt(area * aspect), np.sqrt(area / aspect)
    angle = rng.uniform(0.0, np.pi)
    cos, sin = np.cos(angle), np.sin(angle)
    dx, dy = xf - x, yf - y
    along = (dx * cos + dy * sin) / axis_a
    across = (-dx * sin + dy * cos) / axis_b
    distance = along**2 + across**2  # squared elliptical radius, 1 on the mask edge
    sign = 1.0 if rng.random() < 0.5 else -1.0
    sign = {"cold": -1.0, "warm": 1.0}.get(polarity, sign)
    delta = sign * rng.uniform(*LESION_DELTA_RANGE)
    profile = np.exp(-np.log(2.0) * distance**2)  # flat top, half height on the edge
    return (delta * profile).astype(np.float32), distance <= 1.0


def _sensor(
    rng: np.random.Generator, temperature: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Noise, optical blur and the inferno palette -> ``(S, S, 3)`` uint8 RGB, and the
    measured ``(S, S)`` float32 degrees (after noise and blur)."""
    noisy = temperature + rng.normal(0.0, rng.uniform(0.06, 0.15), temperature.shape)
    noisy += rng.normal(0.0, 0.03, (temperature.shape[0], 1))  # row (fixed-pattern) noise
    noisy = cv2.GaussianBlur(noisy.astype(np.float32), (0, 0), 0.6 * size / 128)
    low = float(np.percentile(temperature, 2)) - rng.uniform(0.5, 2.0)
    high = 35.0 + rng.uniform(1.5, 2.5)
    levels = np.clip((noisy - low) / (high - low), 0.0, 1.0)
    gray = np.round(levels * 255.0).astype(np.uint8)
    colored = cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(colored, cv2.COLOR_BGR2RGB), noisy


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def _write_image(path: Path, image: np.ndarray) -> None:
    """Encode by suffix and write (works for non-ASCII paths)."""
    ok, buffer = cv2.imencode(path.suffix, image)
    if not ok:
        raise ConfigurationError(f"cannot encode '{path.name}'; use --ext png")
    path.write_bytes(buffer.tobytes())


def _remove_stale(dataset: SyntheticDataset) -> None:
    """Delete ``face_<digits>`` files of earlier runs that this data set did not write."""
    keep = set(dataset.paths) | {path for path in dataset.mask_paths if path is not None}
    folders = [dataset.image_dir / name for name in CLASS_NAMES]
    folders += [dataset.mask_dir / name for name in CLASS_NAMES]
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and _FACE_NAME.match(path.stem) and path not in keep:
                path.unlink()


def check_set_arguments(n: int, size: int, icas_fraction: float, ext: str) -> None:
    """The arguments every synthetic set shares: image count, side, ICAS share, format."""
    check_int("n", n, 1)
    check_int("size", size, MIN_SIZE)
    check_number("icas_fraction", icas_fraction, 0.0, 1.0)
    check_choice("ext", ext.lower() if isinstance(ext, str) else ext, IMAGE_EXTENSIONS)
