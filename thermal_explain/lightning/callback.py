"""``GradCAMCallback``: heatmaps of a probe set in validation and of every image in predict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

from thermal_explain.cam import get_method
from thermal_explain.checks import check_choice, check_int, check_names, check_number
from thermal_explain.data.dataset import ThermalImageDataset, class_balanced_indices, collate
from thermal_explain.data.preprocessing import Preprocessing
from thermal_explain.data.thermal import POLARITIES, READOUT_FRACTION, READOUT_THRESHOLD
from thermal_explain.metrics.readout import ReadoutOptions
from thermal_explain.metrics.suite import MetricOptions, parse_metrics
from thermal_explain.modeling.checkpoints import TrainedWeights
from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.html import ReportSettings
from thermal_explain.output.naming import RESULTS_FILE
from thermal_explain.output.panels import probe_panel
from thermal_explain.pipeline.explainer import ExplainedBatch, Explainer
from thermal_explain.pipeline.manifest import analysis_manifest, model_facts
from thermal_explain.pipeline.run import ExplanationRun, OutputOptions


class GradCAMCallback(Callback):
    """Grad-CAM heatmaps inside Lightning's validation and predict loops.

    During validation (never the sanity check), every ``every_n_epochs`` epochs, the maps of a
    fixed class-balanced probe set of the validation data are logged to TensorBoard: one panel
    per probe image (the original and each layer's overlay, titled with label and confidence)
    under a stable tag with ``step = epoch``, and per-layer scalars (mean activation area and
    centre of mass). During predict, every batch goes through the same engine on the model's
    device, and the writer saves the contract's outputs under ``output_dir``.

    Args:
        layers: dotted layer names relative to the encoder; ``None`` picks the last conv of
            each ResNet stage.
        method: ``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam`` or ``hirescam``.
        target: ``None`` for the predicted class, or a class index or name.
        every_n_epochs: log the probe set every n-th validation epoch.
        num_probe_samples: size of the validation probe set.
        output_dir: where predict writes its outputs (and a TensorBoard run under
            ``tensorboard/``).
        colormap: OpenCV or matplotlib colormap name.
        original_alpha: weight of the desaturated original in overlays.
        heatmap_alpha: weight of the heatmap in overlays.
        log_to_tensorboard: log panels and scalars (validation) and overlays (predict).
        save_to_disk: write the predict outputs (PNG, NPY, JSON, report).
        save_figures: write the 300-DPI matplotlib figures in predict.
        overwrite: start a predict run over instead of resuming what ``output_dir`` holds.
        probe_seed: seed of the probe-set choice.
        metrics: quality metrics for predict (``deletion``, ``insertion``, ``confidence``,
            ``localization`` (needs the data's ``mask_dir``), ``sanity``, ``faithfulness``,
            ``all``); see :mod:`thermal_explain.metrics.suite`.
        metric_steps: deletion/insertion steps.
        fuse: add a ``fused`` map (every layer combined) to each predict record.
        lesion_polarity: asymmetry mode: draw maps on both sides (``none``), or on the
            colder (``cold``) or warmer (``warm``) point of each mirrored pair.
        readout_map: map of the left-right thermal readout (``fused`` or a layer name).
        readout_fraction: share of the half-width map in the readout's attended region.
        readout_threshold: left-right difference in degrees Celsius flagged in records.
        html_report: write ``output_dir/report.html`` at the end of predict.
    """

    def __init__(
        self,
        *,
        layers: list[str] | None = None,
        method: str = "gradcam",
        target: int | str | None = None,
        every_n_epochs: int = 1,
        num_probe_samples: int = 8,
        output_dir: str = "interpretability_analysis",
        colormap: str = "jet",
        original_alpha: float = 0.3,
        heatmap_alpha: float = 0.7,
        log_to_tensorboard: bool = True,
        save_to_disk: bool = True,
        save_figures: bool = True,
        overwrite: bool = False,
        probe_seed: int = 0,
        metrics: list[str] | None = None,
        metric_steps: int = 16,
        fuse: bool = False,
        lesion_polarity: str = "none",
        readout_map: str = "fused",
        readout_fraction: float = READOUT_FRACTION,
        readout_threshold: float = READOUT_THRESHOLD,
        html_report: bool = True,
    ) -> None:
        super().__init__()
        check_choice("lesion_polarity", lesion_polarity, POLARITIES)
        self.readout = ReadoutOptions(readout_map, readout_fraction, readout_threshold)
        get_method(method)
        parse_metrics(metrics)
        check_int("metric_steps", metric_steps, 1)
        get_colormap(colormap)
        check_int("every_n_epochs", every_n_epochs, 1)
        check_int("num_probe_samples", num_probe_samples, 0)
        check_number("original_alpha", original_alpha, 0.0, 1.0)
        check_number("heatmap_alpha", heatmap_alpha, 0.0, 1.0)
        self.layers = check_names("layers", layers) if layers is not None else None
        self.method = method
        self.target = target
        self.every_n_epochs = every_n_epochs
        self.num_probe_samples = num_probe_samples
        self.output_dir = output_dir
        self.colormap = colormap
        self.original_alpha = original_alpha
        self.heatmap_alpha = heatmap_alpha
        self.log_to_tensorboard = log_to_tensorboard
        self.save_to_disk = save_to_disk
        self.save_figures = save_figures
        self.overwrite = overwrite
        self.probe_seed = probe_seed
        self.metrics = list(metrics or [])
        self.metric_steps = metric_steps
        self.fuse = fuse
        self.lesion_polarity = lesion_polarity
        self.html_report = html_report
        self.probe_indices: list[int] | None = None
        self.failed_images = 0
        """Images recorded as failed by the last predict run (rank zero)."""
        self._explainer: Explainer | None = None
        self._run: ExplanationRun | None = None

    # ------------------------------------------------------------------ shared
    def _make_explainer(
        self, pl_module: L.LightningModule, trainer: L.Trainer, stage: str, names: list[str]
    ) -> Explainer:
        predicting = stage == "predict"
        mask_lookup = None
        datamodule = trainer.datamodule
        if predicting and getattr(datamodule, "mask_dir", None) is not None:
            mask_lookup = datamodule.mask_path
        return Explainer(
            pl_module.encoder,
            names,
            layers=self.layers,
            method=self.method,
            target=self.target,
            asymmetry=bool(pl_module.hparams.get("use_asymmetry", False)),
            fuse=self.fuse and predicting,
            metrics=self.metrics if predicting else (),
            mask_lookup=mask_lookup,
            metric_options=MetricOptions(steps=self.metric_steps),
            lesion_polarity=self.lesion_polarity,
            readout=self.readout,
        )

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        weights = _weights_in_use(pl_module) if stage != "fit" else None
        names = _class_names(pl_module, weights)
        adopt = getattr(trainer.datamodule, "adopt_preprocessing", None)
        if weights is not None and adopt is not None:
            use_asymmetry = bool(pl_module.hparams.get("use_asymmetry", False))
            adopt(Preprocessing.from_record(weights.preprocessing, use_asymmetry), weights.source)
        self._explainer = self._make_explainer(pl_module, trainer, stage, names)
        if stage == "predict":
            self._start_predict(trainer, pl_module, weights, names)

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if getattr(pl_module, "explainer", None) is self._explainer:
            pl_module.explainer = None
        if self._run is not None:
            self._run.close()
            self._run = None
        self._explainer = None

    # -------------------------------------------------------------- validation
    @override
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.log_to_tensorboard or self.num_probe_samples == 0:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs != 0 or not trainer.is_global_zero:
            return
        experiment = _tensorboard_experiment(trainer)
        if experiment is None:
            return
        batch = self._probe_batch(trainer)
        if batch is None or len(batch) == 0:
            return
        assert self._explainer is not None
        explained = self._explainer(batch.to(pl_module.device))
        epoch = trainer.current_epoch
        colormap = get_colormap(self.colormap)
        for slot, item in enumerate(explained.items):
            panel = probe_panel(item, colormap, self.original_alpha, self.heatmap_alpha)
            tag = f"gradcam/probe_{slot:02d}_{Path(item.image_path).stem}"
            experiment.add_image(tag, panel, global_step=epoch, dataformats="HWC")
        for layer in self._explainer.layers:
            stats = [item.layers[layer].statistics for item in explained.items]
            area = sum(float(s["activation_area"]) for s in stats) / len(stats)
            com_x = sum(float(s["center_of_mass"][0]) for s in stats) / len(stats)
            com_y = sum(float(s["center_of_mass"][1]) for s in stats) / len(stats)
            experiment.add_scalar(f"gradcam_area/{layer}", area, global_step=epoch)
            experiment.add_scalar(f"gradcam_center_x/{layer}", com_x, global_step=epoch)
            experiment.add_scalar(f"gradcam_center_y/{layer}", com_y, global_step=epoch)

    def _probe_batch(self, trainer: L.Trainer) -> Any:
        dataset = _validation_dataset(trainer)
        if dataset is None:
            return None
        if self.probe_indices is None:
            labels = getattr(dataset, "labels", None) or [0] * len(dataset)
            self.probe_indices = class_balanced_indices(
                labels, self.num_probe_samples, self.probe_seed
            )
        return collate([dataset[i] for i in self.probe_indices])

    # ----------------------------------------------------------------- predict
    def _start_predict(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        weights: TrainedWeights | None,
        names: list[str],
    ) -> None:
        assert self._explainer is not None
        pl_module.explainer = self._explainer
        if not self.save_to_disk:
            return
        datamodule = trainer.datamodule
        dataset = getattr(datamodule, "predict_dataset", None)
        paths = [str(path) for path in getattr(dataset, "paths", [])]
        preprocessing = getattr(datamodule, "preprocessing", None)
        known = isinstance(preprocessing, Preprocessing)
        output = OutputOptions(
            colormap=self.colormap,
            original_alpha=self.original_alpha,
            heatmap_alpha=self.heatmap_alpha,
            save_figures=self.save_figures,
            temperature_scale=preprocessing.temperature_scale if known else None,
            temperature_range=preprocessing.temperature_range if known else None,
        )
        self._run = ExplanationRun(
            self.output_dir,
            class_names=names,
            layers=self._explainer.layers,
            output=output,
            overwrite=self.overwrite,
            all_paths=paths,
            log_to_tensorboard=self.log_to_tensorboard,
            manifest=self._manifest(pl_module, weights, names, datamodule, output),
            rank=trainer.global_rank,
            barrier=trainer.strategy.barrier,
            broadcast=trainer.strategy.broadcast,
            report=self._report_settings(datamodule) if self.html_report else None,
        )
        if isinstance(dataset, ThermalImageDataset):
            # Resume: the loader is built after setup, over the images still to do only.
            todo = dataset.subset(self._run.pending(dataset.paths))
            datamodule.predict_dataset = todo
            if len(todo) == 0:  # Lightning skips an empty predict loop and its hooks
                self._finish(trainer, resumed_done=True)

    def _manifest(
        self,
        pl_module: L.LightningModule,
        weights: TrainedWeights | None,
        names: list[str],
        datamodule: Any,
        output: OutputOptions,
    ) -> dict[str, Any]:
        """What makes this predict run's results (``run_manifest.json``)."""
        assert self._explainer is not None
        state = weights.state if weights is not None else pl_module.state_dict()
        path = weights.path if weights is not None else None
        backbone = getattr(getattr(pl_module, "encoder", None), "backbone_name", None)
        preprocessing = getattr(datamodule, "preprocessing", None)
        return analysis_manifest(
            model_facts(state, names, path, backbone),
            preprocessing.to_dict() if isinstance(preprocessing, Preprocessing) else None,
            getattr(datamodule, "preprocessing_from", "unknown"),
            self._explainer.settings(),
            asdict(output),
        )

    def _report_settings(self, datamodule: Any) -> ReportSettings:
        target = "the predicted class" if self.target is None else str(self.target)
        metrics = ", ".join(self.metrics) or "none"
        facts = {"Method": self.method, "Target": target, "Metrics": metrics}
        masks = getattr(datamodule, "mask_dir", None) is not None
        return ReportSettings(facts=facts, mask_lookup=datamodule.mask_path if masks else None)

    @override
    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._run is None or not isinstance(outputs, ExplainedBatch):
            return
        self._run.write(outputs)

    @override
    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer)

    def _finish(self, trainer: L.Trainer, resumed_done: bool = False) -> None:
        if self._run is None:
            return
        run, self._run = self._run, None
        records = run.finish()
        if trainer.is_global_zero:
            failed = self.failed_images = sum(1 for r in records if r.get("status") != "ok")
            done = " (nothing left to explain; --overwrite starts over)" if resumed_done else ""
            rank_zero_info(
                f"Grad-CAM: {len(records)} images recorded ({failed} failed) in "
                f"{run.output_dir / RESULTS_FILE}{done}"
            )

    # ------------------------------------------------------------------- state
    @override
    def state_dict(self) -> dict[str, Any]:
        return {"probe_indices": self.probe_indices}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.probe_indices = state_dict.get("probe_indices")


def _tensorboard_experiment(trainer: L.Trainer) -> Any:
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            return experiment
    return None


def _validation_dataset(trainer: L.Trainer) -> Any:
    datamodule = trainer.datamodule
    dataset = getattr(datamodule, "val_dataset", None) if datamodule is not None else None
    if dataset is not None:
        return dataset
    loaders = trainer.val_dataloaders
    if isinstance(loaders, Sequence) and loaders:
        loaders = loaders[0]
    return getattr(loaders, "dataset", None)


__all__ = ["GradCAMCallback"]


def _weights_in_use(pl_module: L.LightningModule) -> TrainedWeights | None:
    """The weights the run will use (``ckpt_path``'s or the module's), when it can tell."""
    trained_weights = getattr(pl_module, "trained_weights", None)
    return trained_weights() if callable(trained_weights) else None


def _class_names(pl_module: L.LightningModule, weights: TrainedWeights | None) -> list[str]:
    """The weights' class names when they fit the module, else the module's."""
    own = list(pl_module.class_names)
    stored = weights.class_names if weights is not None else None
    return list(stored) if stored is not None and len(stored) == len(own) else own
