"""Small records passed between the data, engine and writer stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

FUSED = "fused"
"""Name of the optional fused map: every layer's normalized map combined by element-wise max."""


@dataclass(frozen=True)
class FailedItem:
    """An input that could not be loaded; recorded, never fatal to a run."""

    path: str
    error: str
    true_label: str | None = None


@dataclass
class Batch:
    """A collated batch of readable images plus the items that failed to load.

    Attributes:
        images: ``(N, C, H, W)`` float model input (``C`` is 3, or 6 in asymmetry mode).
        labels: ``(N,)`` long class indices, ``-1`` where unknown.
        indices: ``(N,)`` long positions in the dataset (stable ids for sharded runs).
        paths: ``N`` source file paths.
        original_sizes: ``N`` ``(height, width)`` of the files as read.
        failed: items of this batch that could not be read.
        backgrounds: ``N`` desaturated originals, ``(height, width)`` uint8, that overlays
            are drawn over (``None`` for an image the writer reads again instead, e.g. a very
            large one), or ``None`` when the dataset does not keep them.
        originals: ``N`` pictures in colour, ``(h, w, 3)`` uint8 at most the dataset's
            ``original_side`` (the report's copy of the original; ``None`` for a temperature
            input, whose background is its display), or ``None`` when it keeps none.
        views: ``(V, N, C, H, W)`` independently augmented views of each image for
            contrastive training (``images`` is then ``views[0]``); ``None`` elsewhere.
        signals: ``(N, S, S)`` float values for the left-right readout on the full-width
            input grid: degrees Celsius for temperature inputs (NaN where unknown), gray
            level 0-255 for pictures; ``None`` when the batch was not read from files.
        input_kinds: ``N`` of ``image``, ``flir_radiometric``, ``temperature_array``.
        temperatures: ``N`` ``temperature`` record entries (``None`` for pictures).
        celsius: ``N`` temperatures ``(height, width)`` float32 of temperature inputs (``None``
            for pictures), or ``None`` when the dataset keeps none (as ``backgrounds``).
    """

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    paths: list[str]
    original_sizes: list[tuple[int, int]]
    failed: list[FailedItem] = field(default_factory=list)
    backgrounds: list[np.ndarray | None] | None = None
    originals: list[np.ndarray | None] | None = None
    views: torch.Tensor | None = None
    signals: torch.Tensor | None = None
    input_kinds: list[str] | None = None
    temperatures: list[dict[str, object] | None] | None = None
    celsius: list[np.ndarray | None] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def select(self, indices: Sequence[int]) -> Batch:
        """The readable images at ``indices`` as a batch of their own (no failed items)."""
        index = torch.as_tensor(list(indices), dtype=torch.long)
        signals = self.signals
        return Batch(
            self.images.index_select(0, index.to(self.images.device)),
            self.labels.index_select(0, index.to(self.labels.device)),
            self.indices.index_select(0, index.to(self.indices.device)),
            [self.paths[i] for i in indices],
            [self.original_sizes[i] for i in indices],
            backgrounds=(
                None if self.backgrounds is None else [self.backgrounds[i] for i in indices]
            ),
            originals=None if self.originals is None else [self.originals[i] for i in indices],
            views=None if self.views is None else self.views[:, index.to(self.views.device)],
            signals=None if signals is None else signals.index_select(0, index.to(signals.device)),
            input_kinds=None
            if self.input_kinds is None
            else [self.input_kinds[i] for i in indices],
            temperatures=(
                None if self.temperatures is None else [self.temperatures[i] for i in indices]
            ),
            celsius=None if self.celsius is None else [self.celsius[i] for i in indices],
        )

    def to(self, device: torch.device | str) -> Batch:
        """Move the tensors to ``device`` (paths and failures stay)."""
        return Batch(
            self.images.to(device),
            self.labels.to(device),
            self.indices.to(device),
            self.paths,
            self.original_sizes,
            self.failed,
            backgrounds=self.backgrounds,
            originals=self.originals,
            views=None if self.views is None else self.views.to(device),
            signals=None if self.signals is None else self.signals.to(device),
            input_kinds=self.input_kinds,
            temperatures=self.temperatures,
            celsius=self.celsius,
        )


@dataclass
class LayerExplanation:
    """One layer's map for one image, ready for the writer (CPU tensors).

    Attributes:
        display_map: ``(H, W)`` float32 in 0..1 on the preprocessed full-width grid
            (in asymmetry mode: left half = the 6-channel map, right half = it mirrored).
        raw_map: ``(h, w)`` float32 unnormalized CAM on the model-input grid (half width
            in asymmetry mode); saved as ``feature_maps/*.npy``.
        statistics: the contract's ``feature_statistics`` at the original image size.
        side_attribution: ``{"left": float, "right": float}`` in asymmetry mode, else ``None``.
        metrics: extra per-layer keys (faithfulness, localization, sanity), merged into the record.
    """

    display_map: torch.Tensor
    raw_map: torch.Tensor
    statistics: dict[str, object]
    side_attribution: dict[str, float] | None = None
    metrics: dict[str, object] = field(default_factory=dict)


@dataclass
class ExplainedImage:
    """Everything the writer needs for one image.

    ``target_label`` names the class the maps explain (the predicted one by default); it
    is the upper-cased ``<CLASS>`` part of output file names. ``pixels``, when set, is the
    ``(H, W, 3)`` uint8 RGB image the maps are drawn on instead of the file at
    ``image_path`` (inputs that are not files, or files whose transform is unknown).
    ``background`` is the desaturated original, ``(height, width)`` uint8, when the batch
    carried it (the writer reads the file again otherwise); ``original`` the picture in
    colour, ``(h, w, 3)`` uint8 at most the report's size, when the batch carried it;
    ``celsius`` a temperature input's ``(height, width)`` float32 degrees, when it carried them.
    ``input_kind``, ``temperature`` and ``thermal_asymmetry`` are the record's top-level
    entries of the same names (see :mod:`thermal_explain.metrics.readout`).
    """

    image_path: str
    index: int
    predicted_class: int
    predicted_label: str
    confidence: float
    true_label: str | None
    target_label: str
    layers: dict[str, LayerExplanation]
    probabilities: list[float] = field(default_factory=list)
    pixels: np.ndarray | None = None
    background: np.ndarray | None = None
    original: np.ndarray | None = None
    celsius: np.ndarray | None = None
    input_kind: str = "image"
    temperature: dict[str, object] | None = None
    thermal_asymmetry: dict[str, object] | None = None
