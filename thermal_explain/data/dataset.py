"""Images read from files and preprocessed for the model, batched into ``Batch``es."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from thermal_explain.checks import check_int, check_number
from thermal_explain.data.augmentation import AugmentationPolicy, ThermalAugmentation
from thermal_explain.data.images import fit_within
from thermal_explain.data.prefetch import ReadAheadLoader
from thermal_explain.data.preprocessing import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    Preprocessing,
    check_preprocessing,
    readout_signal,
    source_to_model_input,
    split_asymmetry,
)
from thermal_explain.data.thermal import (
    TemperatureScale,
    ThermalInput,
    check_temperature_range,
    read_input,
)
from thermal_explain.errors import ConfigurationError, ThermalExplainError
from thermal_explain.types import Batch, FailedItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One readable image, preprocessed.

    Attributes:
        image: ``(C, S, W)`` float32 model input.
        label: class index, ``-1`` when unknown.
        index: position in the dataset.
        path: source file.
        original_size: ``(height, width)`` of the file as read.
        background: the desaturated original, ``(height, width)`` uint8, when the dataset
            keeps it for the writer (see :data:`BACKGROUND_MAX_PIXELS`).
        original: the picture in colour, ``(h, w, 3)`` uint8 with its longest side at most
            the dataset's ``original_side``, when it keeps one (pictures only).
        views: ``(V, C, S, W)`` augmented views for contrastive training (``image`` is
            ``views[0]``), ``None`` for a single view.
        signal: ``(S, S)`` degrees Celsius (temperature inputs) or gray level (pictures) on
            the model's full-width grid, for the left-right readout.
        input_kind: ``image``, ``flir_radiometric`` or ``temperature_array``.
        temperature: the record's ``temperature`` entry (temperature inputs only).
        celsius: the temperatures ``(height, width)`` float32 of a temperature input, kept
            with its background for the writer's temperature figures.
    """

    image: torch.Tensor
    label: int
    index: int
    path: str
    original_size: tuple[int, int]
    background: np.ndarray | None = None
    views: torch.Tensor | None = None
    signal: torch.Tensor | None = None
    input_kind: str = "image"
    temperature: dict[str, object] | None = None
    original: np.ndarray | None = None
    celsius: np.ndarray | None = None


BACKGROUND_MAX_PIXELS = 1 << 22
"""Largest original (4 megapixels) whose desaturated copy travels with the batch to the
writer; the writer reads a larger one again rather than hold it in memory while queued."""


class ThermalImageDataset(Dataset):
    """Images read from files, preprocessed for the model; bad files become FailedItems.

    ``__getitem__`` returns a :class:`Sample`, or a :class:`FailedItem` for a file that
    cannot be read (it never raises for a bad file). With ``flip_probability`` each
    image is mirrored left-right with that probability (training augmentation; in
    asymmetry mode this swaps the two halves). With ``keep_backgrounds`` each sample also
    carries its desaturated original, which the writer draws overlays over instead of
    reading and decoding the file a second time; with ``original_side`` each picture also
    carries a colour copy at most that many pixels on its longest side (the report's copy of
    the original, which the writer's workers draw the report's pictures from). With an
    active ``augmentation`` policy each sample is augmented
    (:mod:`thermal_explain.data.augmentation`, before the asymmetry split); with ``views``
    >= 2 it carries that many independently augmented views for contrastive training.
    Temperature inputs (FLIR JPEGs, ``.npy`` and float TIFF arrays, 16-bit exports with
    ``temperature_scale``) are windowed by ``temperature_range``; temperatures outside
    -50..150 C give one warning per data set.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int] | None = None,
        image_size: int = 224,
        mean: Sequence[float] = DEFAULT_MEAN,
        std: Sequence[float] = DEFAULT_STD,
        use_asymmetry: bool = False,
        class_names: Sequence[str] | None = None,
        flip_probability: float = 0.0,
        keep_backgrounds: bool = False,
        original_side: int | None = None,
        augmentation: AugmentationPolicy | None = None,
        views: int = 1,
        temperature_range: tuple[float, float] | None = None,
        temperature_scale: str | None = None,
    ) -> None:
        check_preprocessing(image_size, mean, std, use_asymmetry)
        check_number("flip_probability", flip_probability, 0.0, 1.0)
        check_views(views)
        self.paths = [Path(path) for path in paths]
        self.labels = [-1] * len(self.paths) if labels is None else [int(x) for x in labels]
        if len(self.labels) != len(self.paths):
            raise ConfigurationError(
                f"labels has {len(self.labels)} entries for {len(self.paths)} paths; "
                "pass one label per path"
            )
        self.image_size = image_size
        self.mean = tuple(float(x) for x in mean)
        self.std = tuple(float(x) for x in std)
        self.use_asymmetry = use_asymmetry
        self.class_names = None if class_names is None else list(class_names)
        self.flip_probability = float(flip_probability)
        self.keep_backgrounds = bool(keep_backgrounds)
        self.original_side = (
            None if original_side is None else check_int("original_side", original_side, 1)
        )
        self.views = views
        self.temperature_range = check_temperature_range(temperature_range)
        self.temperature_scale = TemperatureScale.parse(temperature_scale)
        self._warned = False
        self.augmentation = augmentation

    @property
    def augmentation(self) -> AugmentationPolicy | None:
        """The training augmentation policy (``None``: images as they are)."""
        return self._policy

    @augmentation.setter
    def augmentation(self, policy: AugmentationPolicy | None) -> None:
        self._policy = policy
        active = policy is not None and policy.active
        self._augment = ThermalAugmentation(policy, self.mean, self.std) if active else None

    @classmethod
    def for_preprocessing(
        cls,
        paths: Sequence[str | Path],
        labels: Sequence[int] | None,
        preprocessing: Preprocessing,
        class_names: Sequence[str] | None = None,
    ) -> ThermalImageDataset:
        """The images of ``paths`` preprocessed as ``preprocessing`` says."""
        dataset = cls(paths, labels, class_names=class_names)
        dataset.set_preprocessing(preprocessing)
        return dataset

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, S, W)`` of every sample: ``(3, S, S)`` or ``(6, S, S // 2)``."""
        size = self.image_size
        return (6, size, size // 2) if self.use_asymmetry else (3, size, size)

    def __len__(self) -> int:
        return len(self.paths)

    def set_preprocessing(self, preprocessing: Preprocessing) -> None:
        """Preprocess from now on as ``preprocessing`` says (images are read lazily)."""
        self.image_size = preprocessing.image_size
        self.mean = preprocessing.mean
        self.std = preprocessing.std
        self.use_asymmetry = preprocessing.use_asymmetry
        self.temperature_range = preprocessing.temperature_range
        self.temperature_scale = TemperatureScale.parse(preprocessing.temperature_scale)
        self.augmentation = self.augmentation  # its amounts are in the new normalization

    def subset(self, paths: Sequence[str | Path]) -> ThermalImageDataset:
        """The same dataset over ``paths`` only (each one of its paths), labels kept."""
        labels = dict(zip(map(str, self.paths), self.labels, strict=True))
        subset = copy.copy(self)
        subset.paths = [Path(path) for path in paths]
        subset.labels = [labels[str(path)] for path in paths]
        return subset

    def __getitem__(self, index: int) -> Sample | FailedItem:
        path = self.paths[index]
        label = self.labels[index]
        try:
            source = read_input(path, self.temperature_scale)
            if self.flip_probability and float(torch.rand(())) < self.flip_probability:
                source = source.flipped()
            if self._augment is None and self.views == 1:
                views = None
                tensor = self._model_input(source, self.use_asymmetry)
            else:
                views = self._draw_views(source)
                tensor = views[0]
            signal = readout_signal(source, self.image_size)
        except (ThermalExplainError, OSError, ValueError, cv2.error) as error:
            return FailedItem(str(path), _one_line(error), self._label_name(label))
        temperature = source.statistics()
        if temperature is not None and "warning" in temperature and not self._warned:
            self._warned = True
            log.warning(
                "'%s' holds temperatures of %s..%s C with --temperature_scale %s; check the "
                "scale (this warning is shown once)",
                path, temperature["min"], temperature["max"], self.temperature_scale,
            )  # fmt: skip
        height, width = source.size
        background = celsius = None
        if self.keep_backgrounds and height * width <= BACKGROUND_MAX_PIXELS:
            background = cv2.cvtColor(source.display(self.temperature_range), cv2.COLOR_RGB2GRAY)
            celsius = source.pixels if source.is_temperature else None
        original = None
        if self.original_side is not None and not source.is_temperature:
            original = fit_within(source.pixels, self.original_side)
        return Sample(
            tensor,
            label,
            index,
            str(path),
            source.size,
            background,
            views if self.views > 1 else None,
            signal,
            source.kind,
            temperature,
            original,
            celsius,
        )

    def _model_input(self, source: ThermalInput, use_asymmetry: bool) -> torch.Tensor:
        return source_to_model_input(
            source,
            self.image_size,
            self.mean,
            self.std,
            use_asymmetry,
            self.temperature_range,
        )

    def _draw_views(self, source: ThermalInput) -> torch.Tensor:
        """``(V, C, S, W)``: the input preprocessed once, then augmented per view."""
        full = self._model_input(source, use_asymmetry=False)
        views = []
        for _ in range(self.views):
            view = self._augment(full) if self._augment is not None else full
            views.append(split_asymmetry(view) if self.use_asymmetry else view)
        return torch.stack(views)

    def _label_name(self, label: int) -> str | None:
        if self.class_names is None or not 0 <= label < len(self.class_names):
            return None
        return self.class_names[label]


def collate(
    samples: Sequence[Sample | FailedItem], input_shape: tuple[int, int, int] | None = None
) -> Batch:
    """Stack readable samples into a :class:`Batch`; failed ones go to ``batch.failed``.

    With no readable sample, ``images`` is ``(0, *input_shape)`` (``(0, 3, 0, 0)`` when
    ``input_shape`` is not given). Samples with ``views`` give ``batch.views`` of shape
    ``(V, N, C, H, W)``.
    """
    readable = [sample for sample in samples if isinstance(sample, Sample)]
    failed = [sample for sample in samples if isinstance(sample, FailedItem)]
    views = None
    if readable:
        images = stack_on_this_thread([sample.image for sample in readable])
        if all(sample.views is not None for sample in readable):
            views = torch.stack([sample.views for sample in readable], dim=1)
    else:
        images = torch.zeros((0, *(input_shape or (3, 0, 0))), dtype=torch.float32)
    with_signal = bool(readable) and all(sample.signal is not None for sample in readable)
    return Batch(
        images=images,
        labels=torch.tensor([sample.label for sample in readable], dtype=torch.long),
        indices=torch.tensor([sample.index for sample in readable], dtype=torch.long),
        paths=[sample.path for sample in readable],
        original_sizes=[sample.original_size for sample in readable],
        failed=failed,
        backgrounds=(
            [sample.background for sample in readable]
            if any(sample.background is not None for sample in readable)
            else None
        ),
        originals=(
            [sample.original for sample in readable]
            if any(sample.original is not None for sample in readable)
            else None
        ),
        celsius=(
            [sample.celsius for sample in readable]
            if any(sample.celsius is not None for sample in readable)
            else None
        ),
        views=views,
        signals=stack_on_this_thread([s.signal for s in readable]) if with_signal else None,  # type: ignore[misc]
        input_kinds=[sample.input_kind for sample in readable],
        temperatures=[sample.temperature for sample in readable],
    )


_NUMPY_DTYPES = frozenset({torch.float32, torch.float64, torch.float16, torch.uint8})


def stack_on_this_thread(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """``(N, *shape)`` from ``N`` tensors of one shape, copied by the calling thread.

    ``torch.stack`` copies on the intra-op thread pool, whose threads wait for each other:
    in a 2-core ``analyze`` run with a writer thread busy beside the engine, stacking a
    batch of 16 images and readout signals at 224 px took about 65 ms, against 3 ms with
    numpy. Tensors numpy cannot hold (off the CPU, bfloat16) are stacked by torch.
    """
    if all(image.device.type == "cpu" and image.dtype in _NUMPY_DTYPES for image in images):
        return torch.from_numpy(np.stack([image.detach().numpy() for image in images]))
    return torch.stack(list(images))


def check_views(views: object) -> int:
    """``views`` if it is an integer >= 1, else a one-line ConfigurationError."""
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise ConfigurationError(
            f"Expected argument `views` to be an integer >= 1 (2 for two-view contrastive "
            f"training) but got {views!r}"
        )
    return views


def class_balanced_indices(labels: Sequence[int], n: int, seed: int) -> list[int]:
    """Pick up to ``n`` indices taking classes in turn (seeded shuffle within each class).

    The order is the round-robin order, so any prefix is balanced too; the same
    arguments always give the same list.
    """
    check_int("n", n, 0)
    rng = np.random.default_rng(seed)
    groups = []
    for label in sorted(set(labels)):
        members = [index for index, value in enumerate(labels) if value == label]
        groups.append([members[i] for i in rng.permutation(len(members))])
    chosen: list[int] = []
    position = 0
    while len(chosen) < n and any(position < len(group) for group in groups):
        for group in groups:
            if position < len(group) and len(chosen) < n:
                chosen.append(group[position])
        position += 1
    return chosen


def stratified_split(
    labels: Sequence[int], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded per-class split into sorted ``(train, val)`` index lists.

    Each class gives ``round(val_fraction * size)`` images to validation, at least one
    and never all of them when it has two or more images and ``val_fraction > 0``.
    """
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(set(labels)):
        members = [index for index, value in enumerate(labels) if value == label]
        shuffled = [members[i] for i in rng.permutation(len(members))]
        count = round(val_fraction * len(shuffled))
        if val_fraction > 0 and len(shuffled) >= 2:
            count = min(max(count, 1), len(shuffled) - 1)
        elif len(shuffled) < 2:
            count = 0
        val.extend(shuffled[:count])
        train.extend(shuffled[count:])
    return sorted(train), sorted(val)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def batch_loader(
    dataset: ThermalImageDataset,
    batch_size: int,
    num_workers: int = 0,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    read_ahead: bool = False,
) -> DataLoader:
    """The one way the project batches a dataset: ``Batch``es, failures kept aside.

    Args:
        dataset: the images.
        batch_size: images per batch.
        num_workers: decoding worker processes (kept alive across epochs when > 0).
        shuffle: reshuffle every epoch (training).
        drop_last: drop a last, smaller batch (training).
        read_ahead: without worker processes, read the next batch in a thread while the
            current one is used (:class:`~thermal_explain.data.prefetch.ReadAheadLoader`;
            for explanation runs, not for augmented training data).
    """
    loader = ReadAheadLoader if read_ahead else DataLoader
    return loader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        collate_fn=partial(collate, input_shape=dataset.input_shape),
    )
