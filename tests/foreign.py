"""A user's own LightningModule and data sets, as a new user of the callback would write them."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torchvision.models import resnet18

CLASSES = ["cat", "dog", "bird"]


class Plain(L.LightningModule):
    """A classifier around any ``net``; batches are tuples or dicts, as the data gives them."""

    def __init__(self, net: nn.Module, image_key: str = "image", label_key: str = "label") -> None:
        super().__init__()
        self.net = net
        self.keys = (image_key, label_key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def split(self, batch: object) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(batch, dict):
            return batch[self.keys[0]], batch[self.keys[1]]
        return batch[0], batch[1]  # type: ignore[index]

    def training_step(self, batch: object, batch_idx: int) -> torch.Tensor:
        x, y = self.split(batch)
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: object, batch_idx: int) -> None:
        x, y = self.split(batch)
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def predict_step(self, batch: object, batch_idx: int) -> torch.Tensor:
        return self(self.split(batch)[0]).softmax(1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Pictures(Dataset):
    """Map-style pictures with ``ImageFolder``'s ``samples`` and ``classes``.

    ``noise`` adds a random perturbation from the global torch generator to every item
    read (a random transform).
    """

    classes = CLASSES

    def __init__(
        self,
        n: int,
        size: int = 32,
        seed: int = 0,
        keys: tuple[str, str] | None = None,
        noise: bool = False,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, size, size, generator=generator)
        self.targets = [index % len(CLASSES) for index in range(n)]
        self.samples = [
            (f"/pictures/{CLASSES[label]}/pic_{seed}_{index:03d}.png", label)
            for index, label in enumerate(self.targets)
        ]
        self.keys = keys
        self.noise = noise

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> object:
        image = self.images[index]
        if self.noise:
            image = image + 0.01 * torch.randn_like(image)
        label = torch.tensor(self.targets[index])
        return {self.keys[0]: image, self.keys[1]: label} if self.keys else (image, label)


class Stream(IterableDataset):
    """An iterable data set: ``n`` images, label 0 for the first ``zeros``, then 1."""

    def __init__(self, n: int, size: int = 32, zeros: int = 3) -> None:
        self.n, self.size, self.zeros = n, size, zeros

    def __iter__(self):  # type: ignore[no-untyped-def]
        generator = torch.Generator().manual_seed(self.n)
        for index in range(self.n):
            image = torch.randn(3, self.size, self.size, generator=generator)
            yield image, int(index >= self.zeros)


def trainer(**overrides: object) -> L.Trainer:
    settings: dict[str, object] = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    settings.update(overrides)
    return L.Trainer(**settings)


def events(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0}
    )
    accumulator.Reload()
    return accumulator


def probe_table(folder: Path, step: int = 0) -> str:
    """The probe table logged at ``step``, read back with TensorBoard's own event reader."""
    found = [e for e in events(folder).Tensors("gradcam/probes/text_summary") if e.step == step]
    return found[-1].tensor_proto.string_val[0].decode()


def table_rows(table: str) -> list[list[str]]:
    """The cells of a Markdown table's body rows."""
    lines = table.splitlines()[2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


class Classifier(Plain):
    """A module LightningCLI can build from its arguments alone."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__(resnet18(weights=None, num_classes=num_classes))


class PicturesData(L.LightningDataModule):
    """Tuple batches of :class:`Pictures` for fit, validate and predict."""

    def __init__(self, size: int = 32, batch_size: int = 3) -> None:
        super().__init__()
        self.size, self.batch_size = size, batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(Pictures(6, self.size), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(Pictures(3, self.size, seed=1), batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(Pictures(4, self.size, seed=2), batch_size=self.batch_size)
