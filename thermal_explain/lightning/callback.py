"""``GradCAMCallback``: heatmaps of a probe set in validation and of every image in predict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from typing_extensions import override

from thermal_explain.cam import get_method
from thermal_explain.cam.modes import random_state_kept
from thermal_explain.checks import (
    check_choice,
    check_class_names,
    check_int,
    check_names,
    check_number,
    expect,
)
from thermal_explain.data.dataset import ThermalImageDataset
from thermal_explain.data.preprocessing import Preprocessing
from thermal_explain.data.thermal import POLARITIES, READOUT_FRACTION, READOUT_THRESHOLD
from thermal_explain.lightning.inputs import BatchReader, display_pixels
from thermal_explain.lightning.modules import explained_module
from thermal_explain.lightning.probe_logging import (
    PROBES_DIR,
    PanelStyle,
    log_probes,
    tensorboard_experiment,
)
from thermal_explain.lightning.probes import ProbeInputs, ProbeSet
from thermal_explain.lightning.run_facts import (
    output_options,
    predict_manifest,
    report_settings,
    weights_in_use,
)
from thermal_explain.lightning.sources import first_loader, item_names, predict_paths
from thermal_explain.lightning.stage_explainer import stage_explainer
from thermal_explain.metrics.readout import ReadoutOptions
from thermal_explain.metrics.suite import parse_metrics
from thermal_explain.modeling.checkpoints import TrainedWeights
from thermal_explain.modeling.classifier import ThermalClassifier
from thermal_explain.output.colormaps import get_colormap
from thermal_explain.output.html import ORIGINAL_SIDE
from thermal_explain.output.naming import RESULTS_FILE
from thermal_explain.output.pool import default_workers, drain_workers, engine_fills_cores
from thermal_explain.pipeline.explainer import ExplainedBatch, Explainer
from thermal_explain.pipeline.run import ExplanationRun
from thermal_explain.types import Batch


class GradCAMCallback(BasePredictionWriter):
    """Grad-CAM heatmaps of any LightningModule inside Lightning's validation and predict loops.

    The explained model is ``pl_module`` itself, the submodule named by ``model_attr``,
    or the encoder of a :class:`ThermalClassifier`; its forward must map ``(N, C, H, W)``
    images to ``(N, K)`` logits. Batches may be this package's ``Batch``, ``(x, y, ...)``
    tuples or lists, dicts (``image_key``, ``label_key``), or anything ``batch_fn`` turns
    into ``images`` or ``(images, labels)``; labels are optional.

    During validation (never the sanity check), every ``every_n_epochs`` epochs, a fixed
    probe set of the validation data (:mod:`thermal_explain.lightning.probes`) is logged
    to the TensorBoard logger: one panel per probe (the input and each layer's overlay
    under a header with the image name, true and predicted class and confidence) under a
    stable tag with ``step = epoch``, and per-layer scalars (mean activation area and
    centre of mass). Without a TensorBoard logger the panels go to
    ``output_dir/probes/epoch_XX/`` as PNG. During predict every batch is explained on the
    model's device and written under ``output_dir`` (records, report, TensorBoard
    overlays): a ``ThermalClassifier`` explains in its own ``predict_step``; any other
    module's batches are explained here, after its ``predict_step``. Image names come from
    the dataset's paths when it has them, else ``batch<b>_<i>``. The engine runs in the
    trainer's precision (``--trainer.precision bf16-mixed`` or ``16-mixed``: autocast, maps
    still computed in float32), and the writer's pool uses the CPU cores it leaves free.

    Args:
        layers: dotted layer names relative to the explained model; ``None`` takes the
            last convolution of each stage (:mod:`thermal_explain.cam.stages`).
        method: ``gradcam``, ``gradcam++``, ``xgradcam``, ``layercam`` or ``hirescam``.
        target: ``None`` for the predicted class, or a class index or name.
        every_n_epochs: log the probe set every n-th validation epoch.
        num_probe_samples: size of the validation probe set (0: no probes).
        output_dir: where predict writes its outputs (and probe PNGs without TensorBoard).
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
        model_attr: dotted path of the submodule to explain (e.g. ``net``).
        image_key: key of the images in dict batches.
        label_key: key of the labels in dict batches.
        batch_fn: a function, or its import path, mapping a batch to ``images`` or
            ``(images, labels)``.
        class_names: class names by index; default: the module's or data module's
            ``class_names``, the hyper-parameters, the data set's ``classes``, else
            ``class_0`` ...
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
        model_attr: str | None = None,
        image_key: str = "image",
        label_key: str = "label",
        batch_fn: str | Callable[[Any], Any] | None = None,
        class_names: list[str] | None = None,
        lesion_polarity: str = "none",
        readout_map: str = "fused",
        readout_fraction: float = READOUT_FRACTION,
        readout_threshold: float = READOUT_THRESHOLD,
        html_report: bool = True,
    ) -> None:
        super().__init__(write_interval="batch")
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
        expect(
            model_attr is None or isinstance(model_attr, str),
            "model_attr",
            "a dotted path",
            model_attr,
        )
        self.layers = check_names("layers", layers) if layers is not None else None
        self.class_names = check_class_names(class_names) if class_names is not None else None
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
        self.model_attr = model_attr
        self.lesion_polarity = lesion_polarity
        self.html_report = html_report
        self.failed_images = 0
        """Images recorded as failed by the last predict run (rank zero)."""
        self.reader = BatchReader(image_key, label_key, batch_fn)
        self.probes = ProbeSet(num_probe_samples, probe_seed, self.reader)
        self._explainer: Explainer | None = None
        self._run: ExplanationRun | None = None
        self._weights: TrainedWeights | None = None
        self._predict_paths: dict[int, list[str] | None] = {}
        self._warned_no_logger = False

    @property
    def probe_indices(self) -> list[int] | None:
        """Dataset indices of the probe set (map-style validation data with known labels)."""
        return self.probes.indices

    # ------------------------------------------------------------------ shared
    def _cooperates(self, pl_module: L.LightningModule) -> bool:
        """Whether ``predict_step`` explains the batch itself (``ThermalClassifier``)."""
        plain = self.model_attr is None and self.reader.batch_fn is None
        return plain and isinstance(pl_module, ThermalClassifier)

    def _explainer_for(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        images: torch.Tensor | None,
        predicting: bool,
    ) -> Explainer:
        """The explainer of this stage, built at first use (class names are final then)."""
        if self._explainer is None:
            self._explainer = stage_explainer(
                self, trainer, pl_module, images, predicting, self._weights
            )
        return self._explainer

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._explainer = None
        self._predict_paths = {}
        self._weights = weights_in_use(pl_module) if stage != "fit" else None
        adopt = getattr(trainer.datamodule, "adopt_preprocessing", None)
        if self._weights is not None and adopt is not None:
            use_asymmetry = bool(getattr(pl_module, "use_asymmetry", False))
            stored = Preprocessing.from_record(self._weights.preprocessing, use_asymmetry)
            adopt(stored, self._weights.source)
        if stage == "predict" and self._cooperates(pl_module):
            explainer = self._explainer_for(trainer, pl_module, None, predicting=True)
            pl_module.explainer = explainer
            if self.save_to_disk:
                self._start_run(trainer, pl_module, explainer)

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._explainer is not None and getattr(pl_module, "explainer", None) is self._explainer:
            pl_module.explainer = None
        if self._run is not None:
            self._run.close()
            self._run = None
        self._explainer = None

    # -------------------------------------------------------------- validation
    def _probing(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and trainer.is_global_zero and self.num_probe_samples > 0

    @override
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._probing(trainer):
            self.probes.start_epoch(first_loader(trainer.val_dataloaders))

    @override
    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx == 0 and self.probes.collecting and self._probing(trainer):
            self.probes.offer(batch)

    @override
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._probing(trainer):
            return
        # Loading probes may draw random numbers (transforms): training must not see them.
        with random_state_kept():
            inputs = self.probes.inputs(first_loader(trainer.val_dataloaders))
            if inputs is None or (trainer.current_epoch + 1) % self.every_n_epochs != 0:
                return
            experiment = None
            if self.log_to_tensorboard:
                experiment = tensorboard_experiment(trainer.loggers)
            if experiment is None and not self._save_probe_files():
                return
            self._log_probes(trainer, pl_module, inputs, experiment)

    def _save_probe_files(self) -> bool:
        """Whether probe panels go to PNG files (no TensorBoard logger); warns once."""
        if not self.save_to_disk:
            return False
        if self.log_to_tensorboard and not self._warned_no_logger:
            rank_zero_warn(
                "GradCAMCallback found no TensorBoard logger; probe panels go to "
                f"{Path(self.output_dir) / PROBES_DIR}/epoch_XX/ as PNG "
                "(add lightning.pytorch.loggers.TensorBoardLogger to see them in TensorBoard)"
            )
            self._warned_no_logger = True
        return True

    def _log_probes(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        inputs: ProbeInputs,
        experiment: Any,
    ) -> None:
        images = inputs.batch.images.to(pl_module.device)
        explainer = self._explainer_for(trainer, pl_module, images, predicting=False)
        explained = explainer(inputs.batch.to(pl_module.device))
        for item, pixels in zip(explained.items, inputs.pixels or [], strict=False):
            item.pixels = pixels
        style = PanelStyle(get_colormap(self.colormap), self.original_alpha, self.heatmap_alpha)
        epoch = trainer.current_epoch
        log_probes(explained.items, explainer.layers, epoch, style, experiment, self.output_dir)

    # ----------------------------------------------------------------- predict
    def _start_run(
        self, trainer: L.Trainer, pl_module: L.LightningModule, explainer: Explainer
    ) -> None:
        datamodule = trainer.datamodule
        dataset = getattr(datamodule, "predict_dataset", None)
        paths, self._predict_paths = predict_paths(dataset, trainer.predict_dataloaders)
        output = output_options(
            datamodule,
            colormap=self.colormap,
            original_alpha=self.original_alpha,
            heatmap_alpha=self.heatmap_alpha,
            save_figures=self.save_figures,
        )
        self._run = ExplanationRun(
            self.output_dir,
            class_names=explainer.class_names,
            layers=explainer.layers,
            output=output,
            overwrite=self.overwrite,
            all_paths=sorted(set(paths)),
            log_to_tensorboard=self.log_to_tensorboard,
            manifest=predict_manifest(
                self._weights,
                explained_module(pl_module, self.model_attr),
                explainer,
                datamodule,
                output,
            ),
            rank=trainer.global_rank,
            barrier=trainer.strategy.barrier,
            broadcast=trainer.strategy.broadcast,
            report=report_settings(self.method, self.target, self.metrics, datamodule)
            if self.html_report
            else None,
            writer_workers=default_workers(
                trainer.strategy.root_device.type, processes=trainer.num_devices
            ),
            writer_drain_workers=drain_workers(processes=trainer.num_devices),
            writer_takes_turns=engine_fills_cores(
                trainer.strategy.root_device, processes=trainer.num_devices
            ),
        )
        if isinstance(dataset, ThermalImageDataset):
            # Resume: the loader is built after setup, over the images still to do only.
            todo = dataset.subset(self._run.pending(dataset.paths))
            if self._run.report is not None:  # the writer draws the report's pictures too
                todo.original_side = ORIGINAL_SIDE
            datamodule.predict_dataset = todo
            if len(todo) == 0:  # Lightning skips an empty predict loop and its hooks
                self._finish(trainer, resumed_done=True)

    @override
    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if isinstance(prediction, ExplainedBatch):
            if self._run is not None:
                self._run.write(prediction)
            return
        if self._cooperates(pl_module) or not self.save_to_disk:
            return
        images, labels = self.reader(batch)
        if self._run is None:
            explainer = self._explainer_for(trainer, pl_module, images, True)
            self._start_run(trainer, pl_module, explainer)
        assert self._run is not None and self._explainer is not None
        if isinstance(batch, Batch) and self.reader.batch_fn is None:
            inputs, pixels = batch, None  # this package's data: drawn on the files
        else:
            indices = [int(index) for index in batch_indices or []]
            paths = self._predict_paths.get(dataloader_idx)
            names = item_names(paths, indices, len(images), batch_idx, dataloader_idx, trainer)
            if len(indices) != len(names):
                indices = list(range(len(names)))
            inputs = Batch(
                images=images,
                labels=labels if labels is not None else torch.full((len(names),), -1),
                indices=torch.tensor(indices, dtype=torch.long),
                paths=names,
                original_sizes=[(int(images.shape[2]), int(images.shape[3]))] * len(names),
            )
            pixels = display_pixels(images)
        todo = {str(path) for path in self._run.pending(inputs.paths)}
        rows = [row for row, path in enumerate(inputs.paths) if str(Path(path)) in todo]
        explained = self._explainer(replace(inputs.select(rows), failed=list(inputs.failed)))
        for item, row in zip(explained.items, rows, strict=True):
            item.pixels = pixels[row] if pixels is not None else None
        self._run.write(explained)

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
        return self.probes.state()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.probes.restore(state_dict)


__all__ = ["GradCAMCallback"]
