"""``UnlabeledImageDataModule``: every image of a folder as augmented views, for pretraining."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from thermal_explain.data.augmentation import DEFAULT_AUGMENTATION, AugmentationPolicy, as_policy
from thermal_explain.data.dataset import ThermalImageDataset, check_views, collate
from thermal_explain.data.files import find_images
from thermal_explain.data.images import IMAGE_SUFFIXES
from thermal_explain.data.preprocessing import DEFAULT_MEAN, DEFAULT_STD, check_preprocessing
from thermal_explain.errors import ConfigurationError


class UnlabeledImageDataModule(L.LightningDataModule):
    """Every image under ``image_dir`` (any depth, no labels) as ``views`` augmented views.

    Batches are :class:`thermal_explain.types.Batch` with ``views`` of shape
    ``(V, N, C, H, W)``; unreadable files travel in ``batch.failed``.

    Args:
        image_dir: folder of thermal face images (sub-folders are searched too).
        pattern: glob of the files under ``image_dir``; only image files count.
        image_size: side of the square model input in pixels.
        mean: per-channel normalization mean (RGB, 0..1 scale).
        std: per-channel normalization standard deviation.
        use_asymmetry: 6-channel input of the left and the mirrored right half.
        batch_size: images per batch (each gives ``views`` inputs).
        num_workers: DataLoader worker processes.
        augmentation: how the views differ
            (:class:`~thermal_explain.data.augmentation.AugmentationPolicy`).
        views: augmented views per image (at least 2).
    """

    def __init__(
        self,
        image_dir: str | None = None,
        pattern: str = "**/*",
        image_size: int = 224,
        mean: Sequence[float] = DEFAULT_MEAN,
        std: Sequence[float] = DEFAULT_STD,
        use_asymmetry: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        augmentation: AugmentationPolicy = DEFAULT_AUGMENTATION,
        views: int = 2,
    ) -> None:
        super().__init__()
        check_preprocessing(image_size, mean, std, use_asymmetry)
        if check_views(views) < 2:
            raise ConfigurationError(
                f"Expected argument `views` to be at least 2 for contrastive pretraining but "
                f"got {views}"
            )
        for name, value, minimum in (
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigurationError(
                    f"Expected argument `{name}` to be an integer >= {minimum} but got {value!r}"
                )
        self.image_dir = image_dir
        self.pattern = pattern
        self.image_size = image_size
        self.mean = [float(x) for x in mean]
        self.std = [float(x) for x in std]
        self.use_asymmetry = use_asymmetry
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmentation = as_policy(augmentation)
        self.views = views
        self.train_dataset: ThermalImageDataset | None = None

    def setup(self, stage: str) -> None:
        """Find the images (once); a folder without images is a one-line error."""
        if self.train_dataset is not None:
            return
        self.train_dataset = ThermalImageDataset(
            find_unlabeled_images(self.image_dir, self.pattern),
            None,
            self.image_size,
            self.mean,
            self.std,
            self.use_asymmetry,
            augmentation=self.augmentation,
            views=self.views,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise RuntimeError("the data module has no images yet; call setup('fit')")
        dataset = self.train_dataset
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=partial(collate, input_shape=dataset.input_shape),
        )


def find_unlabeled_images(image_dir: str | Path | None, pattern: str = "**/*") -> list[Path]:
    """The image files (by suffix) among the ``pattern`` matches under ``image_dir``.

    Raises:
        ConfigurationError: no folder given, a missing folder, or no image files.
    """
    if image_dir is None:
        raise ConfigurationError(
            "pretraining needs images; pass --data.image_dir DIR (a folder of thermal faces, "
            "no labels needed)"
        )
    suffixes = ", ".join(IMAGE_SUFFIXES)
    no_images = (
        f"no images under '{image_dir}' (pattern '{pattern}', suffixes {suffixes}); pass a "
        "folder of thermal face images with --data.image_dir"
    )
    try:
        paths = find_images(image_dir, pattern)
    except ConfigurationError as error:
        if not Path(image_dir).is_dir():
            raise
        raise ConfigurationError(no_images) from error
    images = [path for path in paths if path.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise ConfigurationError(no_images)
    return images
