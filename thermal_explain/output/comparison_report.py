"""``comparison_report.txt``: per-layer similarity of two models' maps, in numbers and words."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Protocol


class _Model(Protocol):
    def describe(self) -> str:
        """One line naming the model, its backbone, input mode and classes."""


class _Pair(Protocol):
    name: str
    layer_a: str
    layer_b: str


class ComparedModels(Protocol):
    """What the report reads of a comparison (``pipeline.comparison.ModelComparison``)."""

    top_fraction: float
    method: str
    image_size: int | str
    same_file: bool
    model_a: _Model
    model_b: _Model
    pairs: Sequence[_Pair]

    @property
    def layer_names(self) -> list[str]:
        """The compared pairs' names, shallowest first."""

    def agreement_rule(self) -> str:
        """One sentence on how predictions are matched between the models."""


def layer_summary(values: Sequence[float | None]) -> dict[str, float] | None:
    """``{"mean", "std", "min", "max"}`` of the finite ``values`` (population std).

    ``None`` entries (pairs with a flat map) are skipped; ``None`` when nothing is left.
    """
    finite = [value for value in values if value is not None and math.isfinite(value)]
    if not finite:
        return None
    return {
        "mean": statistics.fmean(finite),
        "std": statistics.pstdev(finite),
        "min": min(finite),
        "max": max(finite),
    }


def _strength(rho: float) -> str:
    if rho >= 0.7:
        return "strongly alike"
    if rho >= 0.4:
        return "moderately alike"
    if rho >= 0.1:
        return "weakly alike"
    if rho > -0.1:
        return "unrelated"
    if rho > -0.4:
        return "weakly opposed"
    return "opposed (each looks where the other does not)"


def build_report(records: Sequence[dict[str, Any]], comparison: ComparedModels) -> str:
    """The text of ``comparison_report.txt`` for ``records`` of ``comparison``'s run."""
    ok = [record for record in records if record.get("status") == "ok"]
    failed = [record for record in records if record.get("status") != "ok"]
    fraction = comparison.top_fraction
    chance = fraction / (2 - fraction)
    lines = [
        "thermal-explain model comparison",
        "=" * 32,
        f"model A: {comparison.model_a.describe()}",
        f"model B: {comparison.model_b.describe()}",
        f"method: {comparison.method}; image size: {comparison.image_size}; "
        f"top fraction: {fraction:g}",
        "each model is explained for its own predicted class",
        *(["model A and model B are the same file"] if comparison.same_file else []),
        "",
        f"images: {len(records)} ({len(ok)} compared, {len(failed)} failed)",
    ]
    if ok:
        agreeing = sum(1 for record in ok if record["agree"])
        lines.append(
            f"prediction agreement: {agreeing}/{len(ok)} ({agreeing / len(ok):.1%}); "
            f"{comparison.agreement_rule()}"
        )
    lines += ["", "per layer (over compared images): mean / std / min / max"]
    width = max(len(name) for name in comparison.layer_names)
    summaries: dict[str, tuple[dict[str, float] | None, dict[str, float] | None]] = {}
    for pair in comparison.pairs:
        rho = layer_summary([record["layers"][pair.name]["spearman"] for record in ok])
        iou = layer_summary([record["layers"][pair.name]["top_iou"] for record in ok])
        summaries[pair.name] = (rho, iou)
        where = "" if pair.layer_a == pair.layer_b else f"  (A {pair.layer_a}, B {pair.layer_b})"
        lines.append(
            f"  {pair.name:<{width}}  Spearman {_stats(rho)}  top-IoU {_stats(iou)}{where}"
        )
    lines += ["", "reading:"]
    lines += [f"  {sentence}" for sentence in _reading(ok, comparison, summaries, chance)]
    if failed:
        lines += ["", "failed images:"]
        lines += [f"  {record['image_path']}: {record.get('error')}" for record in failed]
    return "\n".join(lines) + "\n"


def _reading(
    ok: Sequence[dict[str, Any]],
    comparison: ComparedModels,
    summaries: dict[str, tuple[dict[str, float] | None, dict[str, float] | None]],
    chance: float,
) -> list[str]:
    """Plain-language sentences about the per-layer numbers."""
    if not ok:
        return ["no image could be compared; see the failed images below"]
    sentences = []
    means = {name: rho["mean"] for name, (rho, _) in summaries.items() if rho is not None}
    if len(means) > 1:
        best = max(means, key=lambda name: means[name])
        worst = min(means, key=lambda name: means[name])
        if means[best] - means[worst] < 0.005:
            sentences.append(
                f"the maps agree equally at every layer (mean Spearman {means[best]:.2f})"
            )
        else:
            sentences.append(
                f"the models' maps agree most at {best} (mean Spearman {means[best]:.2f}) and "
                f"least at {worst} ({means[worst]:.2f})"
            )
    for name, (rho, iou) in summaries.items():
        if rho is None or iou is None:
            continue
        overlap = "above" if iou["mean"] > chance + 0.05 else "near or below"
        sentences.append(
            f"{name}: {_strength(rho['mean'])}; their top regions overlap {iou['mean']:.2f} "
            f"on average, {overlap} the {chance:.2f} expected of unrelated maps"
        )
    last = comparison.pairs[-1].name
    same = layer_summary([r["layers"][last]["spearman"] for r in ok if r["agree"]])
    other = layer_summary([r["layers"][last]["spearman"] for r in ok if not r["agree"]])
    if same is not None and other is not None:
        sentences.append(
            f"at {last}, mean Spearman is {same['mean']:.2f} where the predictions agree and "
            f"{other['mean']:.2f} where they differ (there the maps explain different classes)"
        )
    flat = sum(record["layers"][name]["flat_map"] for record in ok for name in summaries)
    if flat:
        sentences.append(
            f"{flat} map pair(s) had a flat map (no spatial contrast, e.g. a layer whose "
            "output is 1x1 at this image size); they have no Spearman or IoU and are left "
            "out of the statistics"
        )
    return sentences


def _stats(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "n/a"
    return " / ".join(f"{summary[key]:6.3f}" for key in ("mean", "std", "min", "max"))
