"""Realistic synthetic thermal faces: several images of each subject (``synth --realistic``).

Clinical thermal data sets are small and hold several images of each person. What makes
one person recognizable (head shape and size, hair, glasses, the person's own left-right
differences) is then a far easier cue than a faint lesion, and a network that memorizes
people reaches full training accuracy while knowing nothing about the lesion. This
generator draws such data: every subject has fixed traits and, for ICAS subjects, one
cold one-sided lesion at a fixed place on the face; each image of the subject redraws
pose and framing (registration jitter), skin temperature drift and the camera's
non-uniformity and noise. File names carry the subject (``s007_03.png``), so
``--data.group_pattern`` can keep each subject on one side of a split.

An image is made in three steps, each its own function: the scene's temperature field in
degrees Celsius (:func:`subject_temperature`), the camera's measurement of it, still in
degrees (:func:`sensor_measurement`), and the 8-bit grayscale rendering with automatic
gain and the background removed, as in segmented face crops (:func:`render_gray`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from thermal_explain.checks import check_int, check_number
from thermal_explain.data.synthetic import (
    _LESION_SITES,
    CLASS_NAMES,
    LESION_AREA_RANGE,
    SyntheticDataset,
    _blob,
    _sigmoid,
    _write_image,
    check_set_arguments,
)

DEFAULT_LESION_STRENGTH = 1.0
"""Peak cooling of a lesion in degrees Celsius: visible on close look, not dominant.

About a third of the nose tip's natural coldness and two to three times the largest
natural left-right difference of a subject's cheeks; each image varies it by +-15 %.
"""

IMAGES_PER_SUBJECT = 5
"""Default number of images of each subject."""

GROUP_PATTERN = r"^(s\d+)_"
"""``--data.group_pattern`` that finds the subject in the file names written here."""

_STEM = re.compile(r"s\d{3,}_\d{2,}$")


@dataclass(frozen=True)
class Lesion:
    """A lesion's place and shape in face coordinates (fixed for its subject)."""

    x: float
    y: float
    axis_a: float
    axis_b: float
    angle: float

    def distance(self, xf: np.ndarray, yf: np.ndarray) -> np.ndarray:
        """Squared elliptical radius ``(S, S)``: 1 on the lesion's edge."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        dx, dy = xf - self.x, yf - self.y
        along = (dx * cos + dy * sin) / self.axis_a
        across = (-dx * sin + dy * cos) / self.axis_b
        return along**2 + across**2


@dataclass(frozen=True)
class Subject:
    """What stays the same in every image of one person."""

    half_width: float
    aspect: float
    chin: float
    skin: float
    features: dict[str, tuple[float, float]]
    side_gradient: float
    hairline: float
    fringe: float
    fringe_side: float
    glasses: bool
    lesion: Lesion | None


@dataclass
class RealisticDataset(SyntheticDataset):
    """A :class:`SyntheticDataset` whose images come in groups of one subject each.

    Attributes:
        subjects: the subject id of each image (``s007``), as in its file name.
        group_pattern: the regex that finds the subject id in the file names.
    """

    subjects: list[str] = field(default_factory=list)
    group_pattern: str = GROUP_PATTERN


def draw_subject(rng: np.random.Generator, icas: bool) -> Subject:
    """Draw one person's fixed traits (and lesion, for an ICAS subject)."""
    paired = {  # name: (left, right) strength; natural left-right differences of +-15 %
        "orbit": rng.uniform(0.6, 1.2),
        "canthus": rng.uniform(1.0, 1.8),
        "eye": -rng.uniform(0.3, 0.8),
        "cheek": -rng.uniform(0.2, 0.7),
    }
    features = {
        name: (value * rng.uniform(0.85, 1.15), value * rng.uniform(0.85, 1.15))
        for name, value in paired.items()
    }
    features["forehead"] = (rng.uniform(0.2, 0.7),) * 2
    features["nose"] = (-rng.uniform(1.5, 3.0),) * 2
    features["mouth"] = (rng.uniform(0.3, 0.9),) * 2
    glasses = bool(rng.random() < 0.3)
    fringe = float(rng.uniform(0.0, 0.35)) if rng.random() < 0.4 else 0.0
    lesion = _draw_lesion(rng, glasses, fringe) if icas else None
    return Subject(
        half_width=float(rng.uniform(0.26, 0.34)),
        aspect=float(rng.uniform(1.15, 1.4)),
        chin=float(rng.uniform(0.0, 0.25)),
        skin=float(rng.uniform(33.0, 35.5)),
        features=features,
        side_gradient=float(rng.uniform(-0.25, 0.25)),
        hairline=float(rng.uniform(-0.9, -0.7)),
        fringe=fringe,
        fringe_side=1.0 if rng.random() < 0.5 else -1.0,
        glasses=glasses,
        lesion=lesion,
    )


def subject_temperature(
    subject: Subject, rng: np.random.Generator, size: int, lesion_strength: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's scene temperature field of ``subject``, in degrees Celsius.

    Pose and framing are drawn per image, as in crops centred on the face: the head's
    centre moves by up to 1.5 % of the side across and 2.5 % down, its size by +-4 %, it
    tilts by up to 4 degrees and turns slightly. Skin temperature drifts by +-0.3 C
    between recordings.

    Returns:
        ``(S, S)`` float32 temperatures, the ``(S, S)`` bool lesion mask (where the lesion
        is visible; empty without one) and the ``(S, S)`` bool head region.
    """
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    u, v = np.meshgrid(grid, grid)
    scale = rng.uniform(0.96, 1.04)
    half_width = subject.half_width * scale
    cx, cy = 0.5 + rng.uniform(-0.015, 0.015), 0.47 + rng.uniform(-0.025, 0.025)
    roll = np.deg2rad(rng.uniform(-4.0, 4.0))
    du, dv = u - cx, v - cy
    xf = (du * np.cos(roll) + dv * np.sin(roll)) / half_width
    yf = (-du * np.sin(roll) + dv * np.cos(roll)) / (half_width * subject.aspect)
    xf = xf * (1.0 + subject.chin * np.clip(yf, 0.0, None))  # narrower lower face
    inner = xf - rng.uniform(-0.04, 0.04)  # yaw moves the features, not the outline
    skin = subject.skin + rng.uniform(-0.3, 0.3)
    radius = np.sqrt(xf**2 + yf**2)
    face = skin - 1.6 * radius**4 + subject.side_gradient * xf
    face += _features(subject, inner, yf)
    for _ in range(4):  # smooth skin variation, different in every recording
        x, y, spread = rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), rng.uniform(0.25, 0.5)
        face += rng.uniform(-0.25, 0.25) * _blob(xf, yf, x, y, spread, spread)
    lesion_mask = np.zeros((size, size), dtype=bool)
    if subject.lesion is not None:
        distance = subject.lesion.distance(inner, yf)
        strength = lesion_strength * rng.uniform(0.85, 1.15)
        face -= strength * np.exp(-np.log(2.0) * distance**2)
        lesion_mask = distance <= 1.0
    face, occluded = _occlusions(subject, face, inner, yf, skin)
    head = _sigmoid((1.0 - radius) / 0.025)
    background = rng.uniform(20.0, 25.0)
    temperature = (background * (1 - head) + face * head).astype(np.float32)
    return temperature, lesion_mask & ~occluded, head > 0.5


def sensor_measurement(temperature: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the camera measures of a ``(S, S)`` scene, in degrees Celsius.

    Non-uniformity (vignetting of up to -0.6 C in the corners and a gradient of up to
    +-0.3 C across the frame), temporal noise of 0.04-0.1 C, fixed-pattern column noise
    and the optics' blur.
    """
    size = temperature.shape[0]
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    u, v = np.meshgrid(grid, grid)
    shading = -rng.uniform(0.0, 1.2) * (u**2 + v**2)
    shading += rng.uniform(-0.3, 0.3) * u + rng.uniform(-0.3, 0.3) * v
    noisy = temperature + shading + rng.normal(0.0, rng.uniform(0.04, 0.1), temperature.shape)
    noisy += rng.normal(0.0, 0.03, (1, size))
    return cv2.GaussianBlur(noisy.astype(np.float32), (0, 0), 0.6 * size / 128)


def render_gray(measured: np.ndarray, head: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(S, S)`` uint8: automatic gain over the head's range, background removed (0)."""
    values = measured[head]
    low = float(np.percentile(values, 1)) - rng.uniform(0.2, 0.8)
    high = float(np.percentile(values, 99.5)) + rng.uniform(0.2, 0.8)
    levels = np.clip((measured - low) / (high - low), 0.0, 1.0)
    gray = np.round(1.0 + levels * 254.0).astype(np.uint8)
    gray[~head] = 0
    return gray


def make_realistic_dataset(
    out_dir: str | Path,
    n: int = 400,
    size: int = 128,
    seed: int = 0,
    icas_fraction: float = 0.5,
    ext: str = "png",
    images_per_subject: int = IMAGES_PER_SUBJECT,
    lesion_strength: float = DEFAULT_LESION_STRENGTH,
) -> RealisticDataset:
    """Write ``n`` grayscale faces of ``ceil(n / images_per_subject)`` subjects.

    Layout: ``<out>/images/{icas,normal}/s<subject>_<image>.<ext>`` and the lesion masks
    ``<out>/masks/icas/s<subject>_<image>.png``; ``round(subjects * icas_fraction)``
    subjects are ICAS (all their images). ``lesion_strength`` is the peak cooling in
    degrees Celsius (default :data:`DEFAULT_LESION_STRENGTH` = 1.0: visible on close
    look, not dominant). Byte-for-byte the same for the same arguments; files of this
    naming left by an earlier run are removed.

    Raises:
        ConfigurationError: an argument out of range (named in the message).
    """
    _check_arguments(n, size, icas_fraction, ext, images_per_subject, lesion_strength)
    root = Path(out_dir)
    dataset = RealisticDataset(image_dir=root / "images", mask_dir=root / "masks")
    for name in CLASS_NAMES:
        (dataset.image_dir / name).mkdir(parents=True, exist_ok=True)
    (dataset.mask_dir / CLASS_NAMES[0]).mkdir(parents=True, exist_ok=True)
    subjects = -(-n // images_per_subject)
    order = np.random.default_rng(seed).permutation(subjects)
    icas = np.zeros(subjects, dtype=bool)
    icas[order[: round(subjects * icas_fraction)]] = True
    digits = max(3, len(str(subjects - 1)))
    for index in range(n):
        number, shot = divmod(index, images_per_subject)
        subject = draw_subject(np.random.default_rng([seed, number]), bool(icas[number]))
        rng = np.random.default_rng([seed, number, shot + 1])
        temperature, lesion, head = subject_temperature(subject, rng, size, lesion_strength)
        image = render_gray(sensor_measurement(temperature, rng), head, rng)
        label = 0 if icas[number] else 1
        subject_id = f"s{number:0{digits}d}"
        path = dataset.image_dir / CLASS_NAMES[label] / f"{subject_id}_{shot:02d}.{ext.lower()}"
        _write_image(path, image)
        mask_path = None
        if label == 0:
            mask_path = dataset.mask_dir / CLASS_NAMES[0] / f"{path.stem}.png"
            _write_image(mask_path, lesion.astype(np.uint8) * 255)
        dataset.paths.append(path)
        dataset.labels.append(label)
        dataset.mask_paths.append(mask_path)
        dataset.subjects.append(subject_id)
    dataset.counts = {name: dataset.labels.count(k) for k, name in enumerate(CLASS_NAMES)}
    _remove_stale(dataset)
    return dataset


def _draw_lesion(rng: np.random.Generator, glasses: bool, fringe: float) -> Lesion:
    """A one-sided lesion at a site glasses or hair do not cover."""
    sites = [
        name
        for name in _LESION_SITES
        if not (glasses and name == "periorbital") and not (fringe > 0.15 and name == "forehead")
    ]
    (x_low, x_high), (y_low, y_high) = _LESION_SITES[sites[rng.integers(len(sites))]]
    side = 1.0 if rng.random() < 0.5 else -1.0
    area = rng.uniform(*LESION_AREA_RANGE)
    aspect = rng.uniform(0.7, 1.4)
    return Lesion(
        x=float(side * rng.uniform(x_low, x_high)),
        y=float(rng.uniform(y_low, y_high)),
        axis_a=float(np.sqrt(area * aspect)),
        axis_b=float(np.sqrt(area / aspect)),
        angle=float(rng.uniform(0.0, np.pi)),
    )


def _features(subject: Subject, xf: np.ndarray, yf: np.ndarray) -> np.ndarray:
    """Warm and cool facial features ``(S, S)`` in degrees (left = negative ``xf``)."""
    places = {  # x, y, sx, sy in face coordinates
        "orbit": (0.38, -0.14, 0.17, 0.1),
        "canthus": (0.16, -0.12, 0.06, 0.05),
        "eye": (0.42, -0.14, 0.08, 0.04),
        "cheek": (0.5, 0.18, 0.2, 0.16),
        "forehead": (0.0, -0.5, 0.45, 0.22),
        "nose": (0.0, 0.22, 0.11, 0.1),
        "mouth": (0.0, 0.5, 0.28, 0.05),
    }
    total = np.zeros_like(xf)
    for name, (x, y, sx, sy) in places.items():
        left, right = subject.features[name]
        if x == 0.0:
            total += left * _blob(xf, yf, 0.0, y, sx, sy)
        else:
            total += left * _blob(xf, yf, -x, y, sx, sy) + right * _blob(xf, yf, x, y, sx, sy)
    return total


def _occlusions(
    subject: Subject, face: np.ndarray, xf: np.ndarray, yf: np.ndarray, skin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Hair (and a fringe over one side of the forehead) and glasses, which block the
    skin's radiation; returns the field and the ``(S, S)`` bool occluded region."""
    side = subject.fringe_side
    edge = subject.hairline + subject.fringe * _sigmoid(side * (xf + 0.2 * side) / 0.15)
    hair = _sigmoid((edge - yf) / 0.05)
    face = face * (1 - hair) + (skin - 5.0) * hair
    occluded = hair > 0.5
    if subject.glasses:
        lenses = np.maximum(
            _sigmoid((1.0 - ((xf + 0.38) / 0.24) ** 2 - ((yf + 0.14) / 0.14) ** 2) / 0.15),
            _sigmoid((1.0 - ((xf - 0.38) / 0.24) ** 2 - ((yf + 0.14) / 0.14) ** 2) / 0.15),
        )
        face = face * (1 - lenses) + (skin - 3.5) * lenses
        occluded |= lenses > 0.5
    return face, occluded


def _remove_stale(dataset: RealisticDataset) -> None:
    """Delete ``s<digits>_<digits>`` files of earlier runs that this data set did not write."""
    keep = set(dataset.paths) | {path for path in dataset.mask_paths if path is not None}
    folders = [dataset.image_dir / name for name in CLASS_NAMES]
    folders += [dataset.mask_dir / name for name in CLASS_NAMES]
    for folder in folders:
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and _STEM.match(path.stem) and path not in keep:
                    path.unlink()


def _check_arguments(
    n: int,
    size: int,
    icas_fraction: float,
    ext: str,
    images_per_subject: int,
    lesion_strength: float,
) -> None:
    check_set_arguments(n, size, icas_fraction, ext)
    check_int("images_per_subject", images_per_subject, 1)
    check_number("lesion_strength", lesion_strength, 0.0)
