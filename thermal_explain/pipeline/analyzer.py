"""``ThermalInterpretabilityAnalyzer``: the original tool's Python API over the shared engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from thermal_explain.data.files import find_images, mask_path_for
from thermal_explain.data.images import DEFAULT_MEAN, DEFAULT_STD
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.suite import MetricOptions
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.output import ResultWriter
from thermal_explain.pipeline.explainer import Explainer
from thermal_explain.pipeline.run import RunSummary, run_analysis


class ThermalInterpretabilityAnalyzer:
    """Grad-CAM analysis of a trained contrastive thermal classifier.

    Example:
        >>> analyzer = ThermalInterpretabilityAnalyzer(model_path="model.pth")
        >>> record = analyzer.analyze_single_image("patient_001.jpg")
        >>> records = analyzer.batch_analyze("images/", "*/*.jpg")

    Args:
        model_path: checkpoint in any supported format (``.ckpt``, ``.pth`` state dicts).
        use_asymmetry_analysis: 6-channel left/mirrored-right mode; ``None`` follows the
            checkpoint.
        output_dir: where outputs go (``interpretability_analysis`` by default).
        layers: dotted layer names; ``None`` picks the last conv of each ResNet stage.
        method: ``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam`` or ``hirescam``.
        target: ``None`` for the predicted class, or a class index or name.
        image_size: side of the square model input.
        batch_size: images per engine call.
        device: ``"cuda"``, ``"cpu"`` or ``None`` (a GPU when there is one).
        colormap: OpenCV or matplotlib colormap name.
        original_alpha: weight of the desaturated original in overlays.
        heatmap_alpha: weight of the heatmap in overlays.
        save_figures: write the 300-DPI matplotlib figures.
        overwrite: start over instead of resuming what ``output_dir`` holds.
        allow_pickle: allow checkpoints that pickle a whole model (trusted files only).
        num_workers: image-decoding worker processes.
        quiet: no progress bar.
        class_names: class names by index, for checkpoints that do not store them.
        mask_dir: ``<stem>.png`` masks mirroring the image folder (localization metrics).
        metrics: quality metrics to add to each layer's record (``deletion``,
            ``insertion``, ``confidence``, ``localization``, ``sanity``, ``faithfulness``,
            ``all``); see :mod:`thermal_explain.metrics.suite`.
        fuse: add a ``fused`` map (every layer combined) to each record.
        metric_options: steps, perturbation and thresholds of the metrics.
        log_to_tensorboard: also log overlays and summary plots under
            ``output_dir/tensorboard``.
    """

    def __init__(
        self,
        model_path: str | Path,
        use_asymmetry_analysis: bool | None = None,
        *,
        output_dir: str | Path = "interpretability_analysis",
        layers: Sequence[str] | None = None,
        method: str = "gradcam",
        target: int | str | None = None,
        image_size: int = 224,
        batch_size: int = 16,
        device: str | None = None,
        colormap: str = "jet",
        original_alpha: float = 0.3,
        heatmap_alpha: float = 0.7,
        save_figures: bool = True,
        overwrite: bool = False,
        allow_pickle: bool = False,
        num_workers: int = 0,
        quiet: bool = True,
        class_names: Sequence[str] | None = None,
        mask_dir: str | Path | None = None,
        metrics: Sequence[str] = (),
        fuse: bool = False,
        metric_options: MetricOptions | None = None,
        log_to_tensorboard: bool = True,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = ThermalClassifier(
            model_path=str(model_path),
            use_asymmetry=bool(use_asymmetry_analysis),
            allow_pickle=allow_pickle,
            class_names=list(class_names) if class_names is not None else None,
        )
        self.mask_dir = Path(mask_dir) if mask_dir is not None else None
        if self.mask_dir is not None and not self.mask_dir.is_dir():
            raise ConfigurationError(
                f"mask_dir '{self.mask_dir}' is not a folder; pass the folder of <stem>.png "
                "masks that mirrors --image_dir"
            )
        self._image_root: Path | None = None
        self.model.eval().to(self.device)
        self.explainer = Explainer(
            self.model.encoder,
            self.model.class_names,
            layers=layers,
            method=method,
            target=target,
            asymmetry=self.model.use_asymmetry,
            fuse=fuse,
            metrics=metrics,
            mask_lookup=self._mask_of if self.mask_dir is not None else None,
            metric_options=metric_options,
        )
        self.output_dir = Path(output_dir)
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.quiet = quiet
        self._writer_options = {
            "colormap": colormap,
            "original_alpha": original_alpha,
            "heatmap_alpha": heatmap_alpha,
            "save_figures": save_figures,
        }
        self._overwrite = overwrite
        self.log_to_tensorboard = log_to_tensorboard
        self.last_run: RunSummary | None = None

    def analyze_single_image(self, image_path: str | Path) -> dict:
        """Analyze one image; returns its record (``status`` says whether it worked)."""
        paths = find_images(image_path=str(image_path))
        return self._run(paths, image_root=None)[0]

    def batch_analyze(self, image_dir: str | Path, pattern: str = "*.jpg") -> list[dict]:
        """Analyze every image of ``image_dir`` matching ``pattern``; returns their records."""
        paths = find_images(image_dir=str(image_dir), pattern=pattern)
        return self._run(paths, image_root=Path(image_dir))

    def _mask_of(self, image_path: str) -> Path | None:
        assert self.mask_dir is not None
        return mask_path_for(image_path, self._image_root, self.mask_dir)

    def _run(self, paths: list[Path], image_root: Path | None) -> list[dict]:
        self._image_root = image_root
        tensorboard = None
        if self.log_to_tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tensorboard = SummaryWriter(str(self.output_dir / "tensorboard"))
        writer = ResultWriter(
            self.output_dir,
            class_names=self.model.class_names,
            layers=self.explainer.layers,
            overwrite=self._overwrite,
            all_paths=[str(path) for path in paths],
            tensorboard=tensorboard,
            **self._writer_options,
        )
        self._overwrite = False
        self.last_run = run_analysis(
            paths,
            explainer=self.explainer,
            writer=writer,
            image_root=image_root,
            image_size=self.image_size,
            mean=DEFAULT_MEAN,
            std=DEFAULT_STD,
            device=self.device,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            quiet=self.quiet,
            tensorboard=tensorboard,
        )
        if tensorboard is not None:
            tensorboard.close()
        return self.last_run.records
