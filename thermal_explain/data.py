"""Finding images, labelling them from class folders, and batching them for the engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from thermal_explain.errors import ConfigurationError, ThermalExplainError, shorten
from thermal_explain.images import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    check_preprocessing,
    read_image,
    to_model_input,
)
from thermal_explain.types import Batch, FailedItem

PATTERN_HINT = "e.g. '*/*.jpg' for class folders, '**/*.png' for any depth"


def find_images(
    image_dir: str | Path | None = None,
    pattern: str = "*.jpg",
    image_path: str | Path | None = None,
) -> list[Path]:
    """The image files to process, sorted.

    Either one file (``image_path``) or every file under ``image_dir`` matching the glob
    ``pattern`` (``*/*.jpg`` spans class folders, ``**`` any depth). Matching ignores
    letter case (``*.jpg`` finds ``FACE.JPG``) and skips hidden files and folders (names
    starting with ``.``).

    Raises:
        ConfigurationError: not exactly one of ``image_path``/``image_dir``, a missing
            file or folder, a bad pattern, or a pattern that matches no files.
    """
    if (image_path is None) == (image_dir is None):
        which = "both were given" if image_path is not None else "neither was given"
        raise ConfigurationError(
            f"pass exactly one of --image_path (one file) or --image_dir (a folder); {which}"
        )
    if image_path is not None:
        path = Path(image_path)
        if path.is_dir():
            raise ConfigurationError(
                f"image_path '{path}' is a folder; pass it with --image_dir (and --pattern)"
            )
        if not path.is_file():
            raise ConfigurationError(
                f"image_path '{path}' does not exist; pass an existing image file with --image_path"
            )
        return [path]
    root = Path(image_dir)
    if not root.exists():
        raise ConfigurationError(
            f"image_dir '{root}' does not exist; pass an existing folder with --image_dir"
        )
    if not root.is_dir():
        raise ConfigurationError(
            f"image_dir '{root}' is a file, not a folder; pass it with --image_path instead"
        )
    if not isinstance(pattern, str) or not pattern.strip():
        raise ConfigurationError(f"pattern must be a non-empty glob; {PATTERN_HINT}")
    try:
        matches = root.glob(_case_insensitive(pattern))
        paths = sorted(path for path in matches if path.is_file() and not _is_hidden(path, root))
    except (NotImplementedError, ValueError) as error:
        raise ConfigurationError(
            f"pattern '{pattern}' is not a relative glob ({error}); {PATTERN_HINT}"
        ) from error
    if not paths:
        raise ConfigurationError(
            f"pattern '{pattern}' matched no files in '{root}'; check --pattern ({PATTERN_HINT})"
        )
    return paths


def infer_class_names(paths: Sequence[str | Path], root: str | Path) -> list[str] | None:
    """Sorted first-level sub-folder names of ``root`` holding the images.

    Returns ``None`` unless every image lies inside a sub-folder of ``root`` (an image
    directly in ``root``, or outside it, has no class folder).
    """
    names: set[str] = set()
    for path in paths:
        relative = _relative(path, root)
        if relative is None or len(relative.parts) < 2:
            return None
        names.add(relative.parts[0])
    return sorted(names) or None


def label_index(path: str | Path, root: str | Path, class_names: Sequence[str] | None) -> int:
    """Class index of an image from its folders, ``-1`` when unknown.

    The image's first-level sub-folder of ``root`` decides; failing that (e.g. ``root``
    is itself one class folder such as ``data/icas``) the nearest parent folder whose
    name matches a class name. Names match exactly first, then ignoring case.
    """
    if not class_names:
        return -1
    exact = {name: index for index, name in reversed(list(enumerate(class_names)))}
    folded = {name.casefold(): index for index, name in reversed(list(enumerate(class_names)))}

    def match(folder: str) -> int:
        if folder in exact:
            return exact[folder]
        return folded.get(folder.casefold(), -1)

    relative = _relative(path, root)
    if relative is not None and len(relative.parts) >= 2:
        index = match(relative.parts[0])
        if index >= 0:
            return index
    for parent in Path(os.path.abspath(path)).parents:
        index = match(parent.name)
        if index >= 0:
            return index
    return -1


def mask_path_for(
    image_path: str | Path, image_dir: str | Path | None, mask_dir: str | Path
) -> Path:
    """The mask of an image: ``mask_dir`` mirrors ``image_dir``, with ``<stem>.png``.

    ``image_dir/icas/p1.jpg`` -> ``mask_dir/icas/p1.png``; an image outside ``image_dir``
    (or without one) maps to ``mask_dir/<stem>.png``.
    """
    image_path = Path(image_path)
    relative = None if image_dir is None else _relative(image_path, image_dir)
    folder = relative.parent if relative is not None else Path()
    return Path(mask_dir) / folder / f"{image_path.stem}.png"


@dataclass(frozen=True)
class Sample:
    """One readable image, preprocessed.

    Attributes:
        image: ``(C, S, W)`` float32 model input.
        label: class index, ``-1`` when unknown.
        index: position in the dataset.
        path: source file.
        original_size: ``(height, width)`` of the file as read.
    """

    image: torch.Tensor
    label: int
    index: int
    path: str
    original_size: tuple[int, int]


class ThermalImageDataset(Dataset):
    """Images read from files, preprocessed for the model; bad files become FailedItems.

    ``__getitem__`` returns a :class:`Sample`, or a :class:`FailedItem` for a file that
    cannot be read (it never raises for a bad file). With ``flip_probability`` each
    image is mirrored left-right with that probability (training augmentation; in
    asymmetry mode this swaps the two halves).
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
    ) -> None:
        check_preprocessing(image_size, mean, std, use_asymmetry)
        if not 0.0 <= flip_probability <= 1.0:
            raise ConfigurationError(f"flip_probability must be in 0..1, got {flip_probability!r}")
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

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, S, W)`` of every sample: ``(3, S, S)`` or ``(6, S, S // 2)``."""
        size = self.image_size
        return (6, size, size // 2) if self.use_asymmetry else (3, size, size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample | FailedItem:
        path = self.paths[index]
        label = self.labels[index]
        try:
            image = read_image(path)
            if self.flip_probability and float(torch.rand(())) < self.flip_probability:
                image = np.ascontiguousarray(image[:, ::-1])
            tensor = to_model_input(image, self.image_size, self.mean, self.std, self.use_asymmetry)
        except (ThermalExplainError, OSError, ValueError, cv2.error) as error:
            return FailedItem(str(path), _one_line(error), self._label_name(label))
        height, width = image.shape[:2]
        return Sample(tensor, label, index, str(path), (height, width))

    def _label_name(self, label: int) -> str | None:
        if self.class_names is None or not 0 <= label < len(self.class_names):
            return None
        return self.class_names[label]


def collate(
    samples: Sequence[Sample | FailedItem], input_shape: tuple[int, int, int] | None = None
) -> Batch:
    """Stack readable samples into a :class:`Batch`; failed ones go to ``batch.failed``.

    With no readable sample, ``images`` is ``(0, *input_shape)`` (``(0, 3, 0, 0)`` when
    ``input_shape`` is not given).
    """
    readable = [sample for sample in samples if isinstance(sample, Sample)]
    failed = [sample for sample in samples if isinstance(sample, FailedItem)]
    if readable:
        images = torch.stack([sample.image for sample in readable])
    else:
        images = torch.zeros((0, *(input_shape or (3, 0, 0))), dtype=torch.float32)
    return Batch(
        images=images,
        labels=torch.tensor([sample.label for sample in readable], dtype=torch.long),
        indices=torch.tensor([sample.index for sample in readable], dtype=torch.long),
        paths=[sample.path for sample in readable],
        original_sizes=[sample.original_size for sample in readable],
        failed=failed,
    )


def class_balanced_indices(labels: Sequence[int], n: int, seed: int) -> list[int]:
    """Pick up to ``n`` indices taking classes in turn (seeded shuffle within each class).

    The order is the round-robin order, so any prefix is balanced too; the same
    arguments always give the same list.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigurationError(f"n must be a non-negative integer, got {n!r}")
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


class ThermalDataModule(L.LightningDataModule):
    """Thermal face images for ``fit``, ``validate`` and ``predict``.

    fit/validate read labelled images from class sub-folders (one folder per class, the
    folder name is the class): ``train_dir``/``val_dir`` when given, else ``image_dir``
    split per class by ``val_fraction`` (seeded, the same split every run). A ``pattern``
    without ``/`` names the files inside each class folder (``*.jpg`` finds
    ``icas/p1.jpg``). predict reads ``image_path`` or every ``pattern`` match under
    ``image_dir`` and labels what it can from the folders (``-1`` otherwise). ``mask_dir``
    mirrors the data folder with ``<stem>.png`` masks.

    Batches are :class:`thermal_explain.types.Batch`; unreadable files travel in
    ``batch.failed`` instead of stopping the run.

    Args:
        image_path: one image to predict.
        image_dir: folder of images (class sub-folders for fit/validate).
        pattern: glob of the images under the data folders (case-insensitive).
        train_dir: training images in class sub-folders (instead of ``image_dir``).
        val_dir: validation images in class sub-folders (instead of a split).
        mask_dir: region masks mirroring the data folder, ``<stem>.png``.
        class_names: class names by index; default: the sorted class folder names.
        image_size: side of the square model input in pixels.
        mean: per-channel normalization mean (RGB, 0..1 scale).
        std: per-channel normalization standard deviation.
        use_asymmetry: 6-channel input of the left and the mirrored right half.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        val_fraction: share of each class held out for validation (no ``val_dir``).
        seed: seed of the train/validation split.
        random_flip: mirror training images left-right at random (half of them); only
            for classes that do not depend on the side, such as ICAS vs normal.
    """

    def __init__(
        self,
        image_path: str | None = None,
        image_dir: str | None = None,
        pattern: str = "*.jpg",
        train_dir: str | None = None,
        val_dir: str | None = None,
        mask_dir: str | None = None,
        class_names: list[str] | None = None,
        image_size: int = 224,
        mean: Sequence[float] = DEFAULT_MEAN,
        std: Sequence[float] = DEFAULT_STD,
        use_asymmetry: bool = False,
        batch_size: int = 16,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        seed: int = 42,
        random_flip: bool = False,
    ) -> None:
        super().__init__()
        if image_path is not None and image_dir is not None:
            raise ConfigurationError(
                "pass either image_path (one file) or image_dir (a folder), not both"
            )
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigurationError(f"pattern must be a non-empty glob; {PATTERN_HINT}")
        check_preprocessing(image_size, mean, std, use_asymmetry)
        _check_int("batch_size", batch_size, 1)
        _check_int("num_workers", num_workers, 0)
        _check_int("seed", seed, None)
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, (int, float))
            or not 0.0 <= val_fraction < 1.0
        ):
            raise ConfigurationError(
                f"val_fraction must be in [0, 1), got {val_fraction!r}; e.g. 0.2"
            )
        self.image_path = image_path
        self.image_dir = image_dir
        self.pattern = pattern
        self.train_dir = train_dir
        self.val_dir = val_dir
        self.mask_dir = mask_dir
        self.image_size = image_size
        self.mean = [float(x) for x in mean]
        self.std = [float(x) for x in std]
        self.use_asymmetry = use_asymmetry
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = float(val_fraction)
        self.seed = seed
        self.random_flip = bool(random_flip)
        self._class_names = None if class_names is None else _check_names(class_names)
        self._names_known = class_names is not None
        self._roots: dict[str, Path] = {}
        self.train_dataset: ThermalImageDataset | None = None
        self.val_dataset: ThermalImageDataset | None = None
        self.predict_dataset: ThermalImageDataset | None = None

    @property
    def class_names(self) -> list[str] | None:
        """Class names by index: as given, as set, or the class folders of the data."""
        if not self._names_known:
            self._names_known = True
            self._class_names = self._discover_class_names()
        return None if self._class_names is None else list(self._class_names)

    @class_names.setter
    def class_names(self, names: Sequence[str] | None) -> None:
        self.set_class_names(names)

    def set_class_names(self, names: Sequence[str] | None) -> None:
        """Use ``names`` (e.g. the model's) for labels; relabels datasets already built."""
        self._class_names = None if names is None else _check_names(names)
        self._names_known = True
        for stage, dataset in self._datasets().items():
            dataset.labels = [
                label_index(path, self._roots[stage], self._class_names) for path in dataset.paths
            ]
            dataset.class_names = self.class_names

    @property
    def num_classes(self) -> int | None:
        """Number of classes, ``None`` while the class names are unknown."""
        names = self.class_names
        return None if names is None else len(names)

    def mask_path(self, image_path: str | Path) -> Path | None:
        """The mask file of an image under ``mask_dir`` (``None`` without ``mask_dir``)."""
        if self.mask_dir is None:
            return None
        for root in (self.image_dir, self.train_dir, self.val_dir):
            if root is not None and _relative(image_path, root) is not None:
                return mask_path_for(image_path, root, self.mask_dir)
        return mask_path_for(image_path, None, self.mask_dir)

    def setup(self, stage: str) -> None:
        """Build the datasets of ``stage`` (``fit``, ``validate`` or ``predict``)."""
        if stage in ("fit", "validate"):
            self._setup_labelled(stage)
        elif stage == "predict":
            self._setup_predict()
        else:
            raise ConfigurationError(
                f"stage {stage!r} is not supported; use fit, validate or predict"
            )

    def train_dataloader(self) -> DataLoader:
        dataset = self._require(self.train_dataset, "fit")
        return self._loader(dataset, shuffle=True, drop_last=len(dataset) >= self.batch_size)

    def val_dataloader(self) -> DataLoader | list:
        dataset = self._require(self.val_dataset, "validate")
        return self._loader(dataset) if len(dataset) else []

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self._require(self.predict_dataset, "predict"))

    def _setup_labelled(self, stage: str) -> None:
        train_root = self.train_dir or self.image_dir
        if stage == "fit" and train_root is None:
            raise ConfigurationError(
                "fit needs labelled images; pass --data.image_dir (one sub-folder per class) "
                "or --data.train_dir"
            )
        if train_root is None and self.val_dir is None:
            raise ConfigurationError(
                "validate needs labelled images; pass --data.val_dir or --data.image_dir "
                "(one sub-folder per class)"
            )
        for root in (train_root, self.val_dir):
            if root is not None:
                self._class_folder_images(Path(root))  # a clear error when nothing matches
        if self._class_names is None:
            self._names_known = False  # the folders may have been filled since
        names = self.class_names
        if stage == "fit" and (names is None or len(names) < 2):
            found = "images outside class folders" if not names else f"only '{names[0]}'"
            raise ConfigurationError(
                f"fit needs at least two classes but found {found} under '{train_root}'; "
                "put the images in one sub-folder per class (e.g. icas/, normal/)"
            )
        if train_root is not None and (stage == "fit" or self.val_dir is None):
            paths, labels = self._labelled(Path(train_root), names)
            if self.val_dir is None:
                train_idx, val_idx = stratified_split(labels, self.val_fraction, self.seed)
            else:
                train_idx, val_idx = list(range(len(paths))), []
            self.train_dataset = self._dataset([paths[i] for i in train_idx], "train", train_root)
            self.train_dataset.flip_probability = 0.5 if self.random_flip else 0.0
            self.val_dataset = self._dataset([paths[i] for i in val_idx], "val", train_root)
        if self.val_dir is not None:
            paths, _ = self._labelled(Path(self.val_dir), names)
            self.val_dataset = self._dataset(paths, "val", self.val_dir)
        if stage == "validate" and not len(self.val_dataset or []):
            raise ConfigurationError(
                "nothing to validate: val_fraction is 0; pass --data.val_dir or a "
                "--data.val_fraction above 0"
            )

    def _setup_predict(self) -> None:
        if self.image_path is None and self.image_dir is None:
            raise ConfigurationError(
                "predict needs images; pass --data.image_path FILE or --data.image_dir DIR"
            )
        paths = find_images(self.image_dir, self.pattern, self.image_path)
        root = Path(self.image_dir) if self.image_dir is not None else paths[0].parent
        self.predict_dataset = self._dataset(paths, "predict", root)

    def _labelled(self, root: Path, names: list[str] | None) -> tuple[list[Path], list[int]]:
        """Images under ``root`` with their class labels; every image must have a class."""
        paths = self._class_folder_images(root)
        labels = [label_index(path, root, names) for path in paths]
        unknown = [path for path, label in zip(paths, labels, strict=True) if label < 0]
        if unknown:
            listed = shorten([str(path) for path in unknown], 2)
            raise ConfigurationError(
                f"{len(unknown)} image(s) under '{root}' are not in a class folder "
                f"({', '.join(names or [])}): {listed}; put each image in a sub-folder "
                "named after its class or set --data.class_names"
            )
        return paths, labels

    def _class_pattern(self) -> str:
        """``pattern`` for class folders: one without ``/`` applies inside each folder."""
        if "/" in self.pattern or os.sep in self.pattern:
            return self.pattern
        return f"*/{self.pattern}"

    def _class_folder_images(self, root: Path) -> list[Path]:
        """Images of the class folders under ``root`` (errors speak of the user's pattern)."""
        if not root.is_dir():
            argument = self._argument_for(root)
            raise ConfigurationError(
                f"{argument} '{root}' is not an existing folder; pass a folder of class "
                f"sub-folders with --data.{argument}"
            )
        try:
            return find_images(root, self._class_pattern())
        except ConfigurationError as error:
            raise ConfigurationError(
                f"no files match pattern '{self.pattern}' inside the class folders of "
                f"'{root}'; put the images in one sub-folder per class (e.g. "
                f"{root / 'icas'}/) or check --data.pattern"
            ) from error

    def _argument_for(self, root: Path) -> str:
        for name in ("train_dir", "val_dir", "image_dir"):
            value = getattr(self, name)
            if value is not None and Path(value) == root:
                return name
        return "image_dir"

    def _discover_class_names(self) -> list[str] | None:
        root = self.train_dir or self.image_dir or self.val_dir
        if root is None or not Path(root).is_dir():
            return None
        try:
            paths = self._class_folder_images(Path(root))
        except ConfigurationError:
            return None
        return infer_class_names(paths, root)

    def _dataset(self, paths: Sequence[Path], stage: str, root: str | Path) -> ThermalImageDataset:
        self._roots[stage] = Path(root)
        names = self.class_names
        labels = [label_index(path, root, names) for path in paths]
        return ThermalImageDataset(
            paths, labels, self.image_size, self.mean, self.std, self.use_asymmetry, names
        )

    def _datasets(self) -> dict[str, ThermalImageDataset]:
        built = {
            "train": self.train_dataset,
            "val": self.val_dataset,
            "predict": self.predict_dataset,
        }
        return {stage: dataset for stage, dataset in built.items() if dataset is not None}

    def _loader(
        self, dataset: ThermalImageDataset, shuffle: bool = False, drop_last: bool = False
    ) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=partial(collate, input_shape=dataset.input_shape),
        )

    @staticmethod
    def _require(dataset: ThermalImageDataset | None, stage: str) -> ThermalImageDataset:
        if dataset is None:
            raise RuntimeError(f"the data module has no {stage} data yet; call setup({stage!r})")
        return dataset


def _case_insensitive(pattern: str) -> str:
    """Rewrite a glob so letters outside ``[...]`` match either case (``a`` -> ``[aA]``)."""
    out: list[str] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "[":
            start = position + 1
            start += pattern.startswith("!", start)
            start += pattern.startswith("]", start)
            close = pattern.find("]", start)
            if close < 0:
                out.append("[[]")
                position += 1
                continue
            out.append(pattern[position : close + 1])
            position = close + 1
            continue
        lower, upper = char.lower(), char.upper()
        out.append(f"[{lower}{upper}]" if lower != upper and len(upper) == 1 else char)
        position += 1
    return "".join(out)


def _is_hidden(path: Path, root: Path) -> bool:
    relative = _relative(path, root)
    parts = relative.parts if relative is not None else (path.name,)
    return any(part.startswith(".") for part in parts)


def _relative(path: str | Path, root: str | Path) -> Path | None:
    """``path`` relative to ``root`` (lexically, then as absolute paths), else ``None``."""
    try:
        return Path(path).relative_to(root)
    except ValueError:
        pass
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _check_int(name: str, value: object, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")


def _check_names(names: Sequence[str]) -> list[str]:
    names = list(names) if not isinstance(names, str) else [names]
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise ConfigurationError(
            f"class_names must be a list of non-empty names, got {names!r}; e.g. [icas, normal]"
        )
    if len(set(names)) != len(names):
        raise ConfigurationError(f"class_names must be unique, got {names}")
    return names
