"""``ThermalInterpretabilityAnalyzer``: the original tool's Python API over the shared run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from thermal_explain.cam.precision import autocast_dtype
from thermal_explain.data.files import MaskLookup, find_images
from thermal_explain.data.preprocessing import resolve_preprocessing
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.readout import ReadoutOptions
from thermal_explain.metrics.suite import MetricOptions
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.output.html import ReportSettings
from thermal_explain.output.pool import default_workers, drain_workers, engine_fills_cores
from thermal_explain.pipeline.device import resolve_device
from thermal_explain.pipeline.explainer import Explainer
from thermal_explain.pipeline.manifest import analysis_manifest, model_facts
from thermal_explain.pipeline.options import AnalysisOptions
from thermal_explain.pipeline.run import ExplanationRun, OutputOptions, RunSummary, explain_files


class ThermalInterpretabilityAnalyzer:
    """Grad-CAM analysis of a trained contrastive thermal classifier.

    Example:
        >>> analyzer = ThermalInterpretabilityAnalyzer(model_path="model.pth", fuse=True)
        >>> record = analyzer.analyze_single_image("patient_001.jpg")
        >>> records = analyzer.batch_analyze("images/", "*/*.jpg")

    Args:
        model_path: checkpoint in any supported format (``.ckpt``, ``.pth`` state dicts).
        use_asymmetry_analysis: 6-channel left/mirrored-right mode; ``None`` follows the
            checkpoint.
        options: an :class:`~thermal_explain.pipeline.options.AnalysisOptions`; keyword
            arguments override its fields (``output_dir``, ``method``, ``layers``,
            ``target``, ``image_size``, ``batch_size``, ``device``, ``precision``,
            ``colormap``, ``original_alpha``, ``heatmap_alpha``, ``save_figures``,
            ``log_to_tensorboard``, ``overwrite``, ``allow_pickle``, ``num_workers``,
            ``writer_workers``, ``quiet``, ``class_names``, ``mask_dir``, ``metrics``,
            ``metric_steps``, ``perturbation``, ``fuse``, ``temperature_scale``,
            ``temperature_range``, ``lesion_polarity``, ``readout_map``, ``readout_fraction``,
            ``readout_threshold``, ``html_report``).

    Raises:
        ConfigurationError: an unknown or invalid option (the message names it).
        CheckpointError: the checkpoint cannot be loaded.
    """

    def __init__(
        self,
        model_path: str | Path,
        use_asymmetry_analysis: bool | None = None,
        *,
        options: AnalysisOptions | None = None,
        **overrides: Any,
    ) -> None:
        self.options = opts = AnalysisOptions.create(options, **overrides)
        self.device = resolve_device(opts.device)
        self.mask_dir = Path(opts.mask_dir) if opts.mask_dir is not None else None
        if self.mask_dir is not None and not self.mask_dir.is_dir():
            raise ConfigurationError(
                f"mask_dir '{self.mask_dir}' is not a folder; pass the folder of <stem>.png "
                "masks that mirrors --image_dir"
            )
        self.model = ThermalClassifier(
            model_path=str(model_path),
            use_asymmetry=bool(use_asymmetry_analysis),
            allow_pickle=opts.allow_pickle,
            class_names=list(opts.class_names) if opts.class_names is not None else None,
        )
        self.preprocessing, self.preprocessing_from = resolve_preprocessing(
            self.model.preprocessing,
            opts.image_size,
            self.model.use_asymmetry,
            f"checkpoint '{model_path}'",
            temperature_range=opts.temperature_range,
            temperature_scale=opts.temperature_scale,
        )
        self._image_root: Path | None = None
        self.model.eval().to(self.device)
        self.explainer = Explainer(
            self.model.encoder,
            self.model.class_names,
            layers=opts.layers,
            method=opts.method,
            target=opts.target,
            asymmetry=self.model.use_asymmetry,
            fuse=opts.fuse,
            metrics=opts.metrics,
            mask_lookup=self._mask_of if self.mask_dir is not None else None,
            metric_options=MetricOptions(steps=opts.metric_steps, perturbation=opts.perturbation),
            precision=opts.precision,
            lesion_polarity=opts.lesion_polarity,
            readout=ReadoutOptions(opts.readout_map, opts.readout_fraction, opts.readout_threshold),
        )
        autocast_dtype(self.explainer.engine.precision, self.device)  # says now what it runs in
        self.output = OutputOptions(
            colormap=opts.colormap,
            original_alpha=opts.original_alpha,
            heatmap_alpha=opts.heatmap_alpha,
            save_figures=opts.save_figures,
            temperature_scale=self.preprocessing.temperature_scale,
            temperature_range=self.preprocessing.temperature_range,
        )
        automatic = opts.writer_workers is None
        self.writer_workers = (
            default_workers(self.device.type) if automatic else opts.writer_workers
        )
        self.writer_drain_workers = drain_workers() if automatic else self.writer_workers
        self.writer_takes_turns = engine_fills_cores(self.device)
        self.report = self._report_settings(str(model_path)) if opts.html_report else None
        self._overwrite = opts.overwrite
        self.model_path = str(model_path)
        self._manifest: dict[str, Any] | None = None
        self.last_run: RunSummary | None = None

    @property
    def output_dir(self) -> Path:
        """Where the outputs go."""
        return Path(self.options.output_dir)

    def analyze_single_image(self, image_path: str | Path) -> dict:
        """Analyze one image; returns its record (``status`` says whether it worked)."""
        paths = find_images(image_path=str(image_path))
        return self._run(paths, image_root=None)[0]

    def batch_analyze(self, image_dir: str | Path, pattern: str = "*.jpg") -> list[dict]:
        """Analyze every image of ``image_dir`` matching ``pattern``; returns their records.

        Files inside the run's own ``output_dir`` are never taken as input.
        """
        paths = find_images(image_dir=str(image_dir), pattern=pattern, exclude=[self.output_dir])
        return self._run(paths, image_root=Path(image_dir))

    def manifest(self) -> dict[str, Any]:
        """What makes this analyzer's results (``run_manifest.json``)."""
        if self._manifest is None:
            encoder = self.model.encoder
            model = model_facts(
                encoder.state_dict(), self.model.class_names, self.model_path, encoder.backbone_name
            )
            self._manifest = analysis_manifest(
                model,
                self.preprocessing.to_dict(),
                self.preprocessing_from,
                self.explainer.settings(),
                asdict(self.output),
            )
        return self._manifest

    def _report_settings(self, model_path: str) -> ReportSettings:
        opts = self.options
        mode = "asymmetry (6-channel)" if self.model.use_asymmetry else "RGB"
        facts = {
            "Model": f"{model_path} ({self.model.encoder.backbone_name})",
            "Method": opts.method,
            "Target": "the predicted class" if opts.target is None else str(opts.target),
            "Input": f"{self.preprocessing.image_size} px, {mode}",
            "Metrics": ", ".join(opts.metrics) or "none",
        }
        lookup = self._mask_of if self.mask_dir is not None else None
        return ReportSettings(facts=facts, mask_lookup=lookup)

    def _mask_of(self, image_path: str) -> Path | None:
        assert self.mask_dir is not None
        return MaskLookup(self.mask_dir, [self._image_root])(image_path)

    def _run(self, paths: list[Path], image_root: Path | None) -> list[dict]:
        self._image_root = image_root
        run = ExplanationRun(
            self.output_dir,
            class_names=self.model.class_names,
            layers=self.explainer.layers,
            output=self.output,
            overwrite=self._overwrite,
            all_paths=[str(path) for path in paths],
            log_to_tensorboard=self.options.log_to_tensorboard,
            manifest=self.manifest(),
            report=self.report,
            writer_workers=self.writer_workers,
            writer_drain_workers=self.writer_drain_workers,
            writer_takes_turns=self.writer_takes_turns,
        )
        self._overwrite = False
        with run:
            self.last_run = explain_files(
                run,
                self.explainer,
                paths,
                preprocessing=self.preprocessing,
                image_root=image_root,
                device=self.device,
                batch_size=self.options.batch_size,
                num_workers=self.options.num_workers,
                quiet=self.options.quiet,
            )
        return self.last_run.records
