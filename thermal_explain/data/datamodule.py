"""``ThermalDataModule``: labelled class folders for fit/validate, any images for predict."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from thermal_explain.checks import check_class_names, check_int, check_number
from thermal_explain.data.augmentation import DEFAULT_AUGMENTATION, AugmentationPolicy, as_policy
from thermal_explain.data.dataset import (
    ThermalImageDataset,
    batch_loader,
    check_views,
    stratified_split,
)
from thermal_explain.data.files import (
    MaskLookup,
    check_pattern,
    find_images,
    infer_class_names,
    label_index,
)
from thermal_explain.data.groups import (
    compile_group_pattern,
    group_ids,
    grouped_split,
    warn_shared_groups,
)
from thermal_explain.data.prefetch import read_ahead_pays
from thermal_explain.data.preprocessing import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_MEAN,
    DEFAULT_STD,
    Preprocessing,
    check_preprocessing,
)
from thermal_explain.data.thermal import TemperatureScale, check_temperature_range
from thermal_explain.errors import ConfigurationError, shorten

log = logging.getLogger(__name__)


class ThermalDataModule(L.LightningDataModule):
    r"""Thermal face images for ``fit``, ``validate`` and ``predict``.

    fit/validate read labelled images from class sub-folders (one folder per class, the
    folder name is the class): ``train_dir``/``val_dir`` when given, else ``image_dir``
    split per class by ``val_fraction`` (seeded, the same split every run). A ``pattern``
    without ``/`` names the files inside each class folder (``*.jpg`` finds
    ``icas/p1.jpg``). predict reads ``image_path`` or every ``pattern`` match under
    ``image_dir`` and labels what it can from the folders (``-1`` otherwise). ``mask_dir``
    mirrors the data folder with ``<stem>.png`` masks.

    Batches are :class:`thermal_explain.types.Batch`; unreadable files travel in
    ``batch.failed`` instead of stopping the run. Training batches carry ``views``
    augmented views of each image (``batch.views``, for two-view contrastive training);
    validation and predict images are never augmented.

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
        random_flip: mirror training images left-right at random (half of them) before
            augmentation; only for classes that do not depend on the side, such as ICAS
            vs normal. The augmentation policy flips by itself; this flip is for runs
            with augmentation off.
        augmentation: the training augmentation policy
            (:class:`~thermal_explain.data.augmentation.AugmentationPolicy`; on by
            default, ``--data.augmentation.enabled false`` switches it off).
        views: augmented views of each training image per batch (2: two-view
            contrastive training; 1: one view, as plain supervised training).
        group_pattern: regular expression on the file name naming the subject (e.g.
            ``s(\d+)_`` or a patient id); the split then keeps all images of a subject
            on one side.
        random_flip: mirror training images left-right at random (half of them); only
            for classes that do not depend on the side, such as ICAS vs normal.
        temperature_range: ``LOW HIGH`` degrees Celsius mapped to the model input for
            temperature inputs (FLIR JPEGs, ``.npy``/float TIFF arrays, scaled 16-bit
            exports); default: the checkpoint's, else each image's own range.
        temperature_scale: ``centikelvin``, ``celsius_x100`` or ``linear:A,B``: read
            single-channel 16-bit images as temperatures (default: the checkpoint's, else
            they are pictures).
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
        image_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        use_asymmetry: bool = False,
        batch_size: int = 16,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        seed: int = 42,
        random_flip: bool = False,
        augmentation: AugmentationPolicy = DEFAULT_AUGMENTATION,
        views: int = 2,
        group_pattern: str | None = None,
        temperature_range: tuple[float, float] | None = None,
        temperature_scale: str | None = None,
    ) -> None:
        super().__init__()
        if image_path is not None and image_dir is not None:
            raise ConfigurationError(
                "pass either image_path (one file) or image_dir (a folder), not both"
            )
        check_pattern(pattern)
        check_preprocessing(
            DEFAULT_IMAGE_SIZE if image_size is None else image_size,
            DEFAULT_MEAN if mean is None else mean,
            DEFAULT_STD if std is None else std,
            use_asymmetry and image_size is not None,
        )
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("seed", seed)
        check_number("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
        check_views(views)
        if group_pattern is not None:
            compile_group_pattern(group_pattern)
        self.image_path = image_path
        self.image_dir = image_dir
        self.pattern = pattern
        self.train_dir = train_dir
        self.val_dir = val_dir
        self.mask_dir = mask_dir
        self.image_size = image_size
        self.mean = None if mean is None else [float(x) for x in mean]
        self.std = None if std is None else [float(x) for x in std]
        window = check_temperature_range(temperature_range)
        self.temperature_range = None if window is None else list(window)
        scale = TemperatureScale.parse(temperature_scale)
        self.temperature_scale = None if scale is None else scale.name
        self._explicit = {
            "image_size": image_size,
            "mean": self.mean,
            "std": self.std,
            "temperature_range": self.temperature_range,
            "temperature_scale": self.temperature_scale,
        }
        self.preprocessing_from = "options" if any(self._explicit.values()) else "defaults"
        self._warned_about: str | None = None
        self.use_asymmetry = use_asymmetry
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = float(val_fraction)
        self.seed = seed
        self.random_flip = bool(random_flip)
        self._class_names = None if class_names is None else check_class_names(class_names)
        self.augmentation = as_policy(augmentation)
        self.views = views
        self.group_pattern = group_pattern
        self._names_known = class_names is not None
        self._roots: dict[str, Path] = {}
        self.train_dataset: ThermalImageDataset | None = None
        self.val_dataset: ThermalImageDataset | None = None
        self.predict_dataset: ThermalImageDataset | None = None

    @property
    def preprocessing(self) -> Preprocessing:
        """The input the datasets make: what was given, else the model's, else the defaults."""
        return Preprocessing(
            image_size=DEFAULT_IMAGE_SIZE if self.image_size is None else self.image_size,
            mean=DEFAULT_MEAN if self.mean is None else self.mean,
            std=DEFAULT_STD if self.std is None else self.std,
            use_asymmetry=self.use_asymmetry,
            temperature_range=self.temperature_range,
            temperature_scale=self.temperature_scale,
        )

    def adopt_preprocessing(self, model: Preprocessing | None, source: str) -> None:
        """Take what was not set explicitly from the preprocessing ``source`` was trained with.

        An explicit value that differs wins, with one warning line (a model explained at
        another size than it was trained at is usually explained wrong).
        ``preprocessing_from`` says where the result came from (``checkpoint``,
        ``options`` or ``defaults``). Datasets already built follow (they preprocess when
        an image is read).
        """
        explicit = {name: value for name, value in self._explicit.items() if value is not None}
        if model is None:
            self.preprocessing_from = "options" if explicit else "defaults"
            return
        differs = []
        for name in self._explicit:
            trained = _listed(getattr(model, name))
            if name not in explicit:
                setattr(self, name, trained)
            elif explicit[name] != trained and name != "temperature_scale":
                differs.append(f"--data.{name} {explicit[name]} (trained with {trained})")
        if differs and self._warned_about != source:
            self._warned_about = source
            log.warning(
                "%s differs from what %s was trained with; using the given value",
                ", ".join(differs), source,
            )  # fmt: skip
        self.preprocessing_from = "options" if differs else "checkpoint"
        check_preprocessing(
            self.preprocessing.image_size, self.preprocessing.mean, self.preprocessing.std,
            self.use_asymmetry,
        )  # fmt: skip
        for dataset in self._datasets().values():
            dataset.set_preprocessing(self.preprocessing)

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
        self._class_names = None if names is None else check_class_names(names)
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
        return MaskLookup(self.mask_dir, (self.image_dir, self.train_dir, self.val_dir))(image_path)

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
        dataset = self._require(self.predict_dataset, "predict")
        ahead = read_ahead_pays(self.trainer.strategy.root_device if self.trainer else None)
        return batch_loader(dataset, self.batch_size, self.num_workers, read_ahead=ahead)

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
            if stage == "fit":
                _check_class_sizes(labels, names or [], train_root)
            train_idx, val_idx = self._split(paths, labels)
            self.train_dataset = self._dataset([paths[i] for i in train_idx], "train", train_root)
            self.train_dataset.flip_probability = 0.5 if self.random_flip else 0.0
            if stage == "fit":
                self.train_dataset.augmentation = self.augmentation
                self.train_dataset.views = self.views
            self.val_dataset = self._dataset([paths[i] for i in val_idx], "val", train_root)
        if self.val_dir is not None:
            paths, _ = self._labelled(Path(self.val_dir), names)
            self.val_dataset = self._dataset(paths, "val", self.val_dir)
            if self.group_pattern is not None and self.train_dataset is not None:
                warn_shared_groups(self.train_dataset.paths, paths, self.group_pattern)
        if stage == "validate" and not len(self.val_dataset or []):
            raise ConfigurationError(
                "nothing to validate: val_fraction is 0; pass --data.val_dir or a "
                "--data.val_fraction above 0"
            )

    def _split(self, paths: list[Path], labels: list[int]) -> tuple[list[int], list[int]]:
        """Train/validation indices: all for training with ``val_dir``, else split (by
        subject with ``group_pattern``)."""
        if self.val_dir is not None:
            return list(range(len(paths))), []
        if self.group_pattern is None:
            return stratified_split(labels, self.val_fraction, self.seed)
        groups = group_ids(paths, self.group_pattern)
        return grouped_split(labels, groups, self.val_fraction, self.seed)

    def _setup_predict(self) -> None:
        if self.image_path is None and self.image_dir is None:
            raise ConfigurationError(
                "predict needs images; pass --data.image_path FILE or --data.image_dir DIR"
            )
        paths = find_images(self.image_dir, self.pattern, self.image_path)
        root = Path(self.image_dir) if self.image_dir is not None else paths[0].parent
        self.predict_dataset = self._dataset(paths, "predict", root)
        self.predict_dataset.keep_backgrounds = True  # the writer draws overlays over them

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
        return ThermalImageDataset.for_preprocessing(paths, labels, self.preprocessing, names)

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
        return batch_loader(
            dataset, self.batch_size, self.num_workers, shuffle=shuffle, drop_last=drop_last
        )

    @staticmethod
    def _require(dataset: ThermalImageDataset | None, stage: str) -> ThermalImageDataset:
        if dataset is None:
            raise RuntimeError(f"the data module has no {stage} data yet; call setup({stage!r})")
        return dataset


def _listed(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _check_class_sizes(labels: Sequence[int], names: Sequence[str], root: str | Path) -> None:
    """Every class needs two training images (one may go to validation)."""
    counts = Counter(labels)
    small = [(name, counts.get(index, 0)) for index, name in enumerate(names)]
    small = [(name, count) for name, count in small if count < 2]
    if small:
        listed = ", ".join(f"'{name}' has {count}" for name, count in small)
        raise ConfigurationError(
            f"fit needs at least 2 images per class but under '{root}' {listed}; add images "
            "to that class folder or remove the folder"
        )
