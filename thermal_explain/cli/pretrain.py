"""``thermal-explain pretrain``: self-supervised two-view pretraining on a folder of images.

A LightningCLI (``--config``, ``--model.*``, ``--data.*``, ``--trainer.*``) around
:class:`~thermal_explain.modeling.pretrainer.ContrastivePretrainer` and
:class:`~thermal_explain.data.unlabeled.UnlabeledImageDataModule`. The images are found
before training starts; the weights end in ``<log dir>/pretrained_encoder.ckpt``, the
file to pass to ``thermal-explain fit --model.pretrained``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from thermal_explain.data.unlabeled import UnlabeledImageDataModule
from thermal_explain.modeling.pretrainer import ContrastivePretrainer

ENCODER_FILE = "pretrained_encoder.ckpt"
"""Name of the checkpoint ``pretrain`` writes into the run's log folder."""


class PretrainCLI(LightningCLI):
    """LightningCLI whose data follow the model's input mode."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.use_asymmetry", "data.use_asymmetry")


def main(argv: list[str]) -> int:
    """Run ``pretrain``; prints where the encoder went. Returns the exit status."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        cli = PretrainCLI(
            ContrastivePretrainer,
            UnlabeledImageDataModule,
            args=argv,
            run=False,
            save_config_callback=None,
            auto_configure_optimizers=False,
            parser_kwargs={"prog": "thermal-explain pretrain"},
        )
    cli.datamodule.setup("fit")  # a folder without images fails here, before any training
    trainer = cli.trainer
    trainer.fit(cli.model, datamodule=cli.datamodule)
    if trainer.interrupted:
        return 130
    folder = Path(trainer.log_dir or trainer.default_root_dir)
    path = folder / ENCODER_FILE
    trainer.save_checkpoint(path, weights_only=True)
    if not trainer.is_global_zero:
        return 0
    images = len(cli.datamodule.train_dataset or [])
    print(f"pretrained encoder ({images} images, {trainer.current_epoch} epochs): {path}")
    print(f"fine-tune it: thermal-explain fit --config configs/fit.yaml --model.pretrained {path}")
    return 0
