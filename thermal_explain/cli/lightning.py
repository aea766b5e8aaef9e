"""LightningCLI for ``thermal-explain fit|validate|predict``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from thermal_explain.data.datamodule import ThermalDataModule
from thermal_explain.errors import ConfigurationError, ThermalExplainError
from thermal_explain.lightning.callback import GradCAMCallback
from thermal_explain.lightning.progress import ImageProgressBar
from thermal_explain.modeling.checkpoints import checkpoint_weights
from thermal_explain.modeling.classifier import ThermalClassifier

TRAINED_MODEL_COMMANDS = ("predict", "validate")
"""Commands that explain or score trained weights (``fit`` may start from scratch)."""


class ThermalLightningCLI(LightningCLI):
    """LightningCLI with the Grad-CAM callback always on and a top-level ``output_dir``.

    The model decides the input mode: class names and asymmetry come from its checkpoint and
    are handed to the data before any work starts. Only the parser of the command being run
    is built (``command``; each costs a tenth of a second or more to build).
    """

    def __init__(self, *args: Any, command: str | None = None, **kwargs: Any) -> None:
        self._command = command
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        """Lightning's sub-commands, or only ``command`` when it is one of them."""
        every = LightningCLI.subcommands()
        return {self._command: every[self._command]} if self._command in every else every

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--output_dir",
            type=str,
            default="interpretability_analysis",
            help="Folder of the predict outputs (heatmaps, overlays, JSON, report, TensorBoard).",
        )
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="Start a predict run over instead of resuming what output_dir holds.",
        )
        parser.add_lightning_class_args(GradCAMCallback, "gradcam")
        parser.link_arguments("output_dir", "gradcam.output_dir")
        parser.link_arguments("overwrite", "gradcam.overwrite")

    def _parse_ckpt_path(self) -> None:
        """Check the model before anything starts, then let LightningCLI read ``ckpt_path``.

        ``predict`` and ``validate`` need trained weights (``--model.model_path`` or
        ``--ckpt_path``); a checkpoint that cannot be read is one line, like everywhere else.
        """
        subcommand = self.config.get("subcommand")
        if subcommand:
            config = self.config[subcommand]
            ckpt_path = config.get("ckpt_path")
            if ckpt_path:
                checkpoint_weights(ckpt_path, allow_pickle=bool(config.model.get("allow_pickle")))
            elif subcommand in TRAINED_MODEL_COMMANDS and not config.model.get("model_path"):
                raise ConfigurationError(
                    f"{subcommand} needs a trained model; pass --model.model_path FILE "
                    "(a .ckpt or .pth) or --ckpt_path FILE"
                )
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if self.subcommand == "predict" and config.trainer.get("default_root_dir") is None:
            config.trainer.default_root_dir = str(Path(config.output_dir))

    def _sync_data_with_model(self) -> None:
        self.datamodule.use_asymmetry = self.model.use_asymmetry
        if self.subcommand != "fit":
            self.datamodule.set_class_names(self.model.class_names)

    before_fit = before_validate = before_predict = _sync_data_with_model

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with :class:`ImageProgressBar` unless bars are off or one is set."""
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = config["trainer"]
        callbacks = trainer.get("callbacks") or []
        if not isinstance(callbacks, list):
            callbacks = [callbacks]
        wanted = trainer.get("enable_progress_bar") is not False
        if wanted and not any(isinstance(callback, ProgressBar) for callback in callbacks):
            trainer["callbacks"] = [*callbacks, ImageProgressBar()]
        return super().instantiate_trainer(**kwargs)


def run_lightning_cli(args: list[str]) -> int:
    """Run a LightningCLI sub-command (``fit``, ``validate`` or ``predict``).

    Returns 0, or 1 when a ``predict`` recorded images that failed (like ``analyze``).

    Raises:
        ThermalExplainError: a usage or environment error, as one line (Lightning's own
            configuration errors included).
    """
    with warnings.catch_warnings():
        # ``args`` is passed on purpose (the dispatcher strips nothing but keeps the command).
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        try:
            cli = ThermalLightningCLI(
                ThermalClassifier,
                ThermalDataModule,
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"prog": "thermal-explain"},
                args=args,
                auto_configure_optimizers=False,
                command=args[0] if args else None,
            )
        except MisconfigurationException as error:
            raise ThermalExplainError(str(error)) from error
    failed = sum(
        callback.failed_images
        for callback in cli.trainer.callbacks
        if isinstance(callback, GradCAMCallback)
    )
    return 1 if failed else 0
