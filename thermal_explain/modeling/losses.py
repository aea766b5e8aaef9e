"""Contrastive losses: SupCon (the L_out form of Khosla et al., 2020) and NT-Xent (SimCLR)."""

from __future__ import annotations

import torch
from torch import nn

from thermal_explain.checks import check_number
from thermal_explain.errors import ConfigurationError


def supcon_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """Supervised contrastive loss over one batch.

    For an anchor ``i`` with positives ``P(i)`` (other samples of its class) the loss is
    ``mean_{p in P(i)} -log(exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t))``, averaged over
    the anchors that have at least one positive. The log-sum-exp subtracts each row's maximum,
    so large ``1 / t`` does not overflow; the math runs in float32 even under autocast.

    Args:
        embeddings: ``(N, D)`` L2-normalized embeddings.
        labels: ``(N,)`` integer class labels.
        temperature: ``t > 0``; smaller values sharpen the similarity distribution.

    Returns:
        A scalar tensor; ``0`` (still attached to the graph) when no sample has a positive.
    """
    check_number("temperature", temperature, 0.0, low_open=True)
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ConfigurationError(
            "supcon_loss expects embeddings (N, D) and labels (N,) but got "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    z = embeddings.float()
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    anchors = counts > 0
    if not bool(anchors.any()):
        return z.sum() * 0.0
    positive_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    per_anchor = -positive_log_prob[anchors] / counts[anchors]
    return per_anchor.mean()


def nt_xent_loss(views: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent, the self-supervised loss of SimCLR (Chen et al., 2020), over ``V`` views.

    Every embedding's only positives are the other views of the same image; all other
    embeddings of the batch are negatives. That is exactly :func:`supcon_loss` with the
    image index as the label, which is how it is computed.

    Args:
        views: ``(V, N, D)`` L2-normalized embeddings, ``V >= 2`` views of ``N`` images.
        temperature: ``t > 0``.

    Returns:
        A scalar tensor.
    """
    if views.ndim != 3 or views.shape[0] < 2:
        raise ConfigurationError(
            f"nt_xent_loss expects (V, N, D) embeddings of V >= 2 views but got "
            f"{tuple(views.shape)}"
        )
    count, n = views.shape[:2]
    image_ids = torch.arange(n, device=views.device).repeat(count)
    return supcon_loss(views.reshape(count * n, -1), image_ids, temperature)


class SupConLoss(nn.Module):
    """Module form of :func:`supcon_loss` with a fixed temperature."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        check_number("temperature", temperature, 0.0, low_open=True)
        self.temperature = temperature

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` embeddings and ``(N,)`` labels -> scalar loss."""
        return supcon_loss(embeddings, labels, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
