"""The left-right thermal readout, side-resolved drawing and what they add to records."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thermal_explain.cam.asymmetry import choose_sides
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.readout import (
    ReadoutOptions,
    attended_region,
    readout_records,
    thermal_readout,
)
from thermal_explain.metrics.summaries import thermal_asymmetry_summary
from thermal_explain.output.report import build_summary
from thermal_explain.pipeline.explainer import Explainer
from thermal_explain.types import Batch


def face(cold_left: bool = True, size: int = 16) -> torch.Tensor:
    """``(size, size)`` degrees: 34 C everywhere, a 2-degree colder 4x4 spot on one side."""
    values = torch.full((size, size), 34.0)
    if cold_left:
        values[4:8, 2:6] = 32.0
    else:
        values[4:8, size - 6 : size - 2] = 32.0
    return values


def test_the_attended_region_is_the_top_fraction_of_the_map():
    maps = torch.arange(40.0).view(1, 5, 8)
    region = attended_region(maps, 0.1)
    assert region.sum() == 4 and bool(region[0, 4, 4:].all())
    assert attended_region(torch.zeros(1, 2, 2), 0.01).sum() == 1  # at least one position


def test_readout_on_the_half_width_grid_compares_the_region_with_its_mirror():
    signals = face(cold_left=True).unsqueeze(0)
    half_map = torch.zeros(1, 16, 8)
    half_map[0, 4:8, 2:6] = 1.0  # the spot's 16 positions = 12.5 % of the half grid
    readout = thermal_readout(half_map, signals, 0.125)
    assert readout.left.item() == pytest.approx(32.0)
    assert readout.right.item() == pytest.approx(34.0)
    record = readout_records(readout, ["celsius"], ReadoutOptions(fraction=0.125))[0]
    assert record == {
        "left": 32.0, "right": 34.0, "delta": -2.0, "colder_side": "left",
        "units": "celsius", "region_fraction": 0.125, "map": "fused",
        "threshold": 0.4, "exceeds_threshold": True,
    }  # fmt: skip


def test_readout_of_a_full_width_map_folds_it_about_the_midline():
    signals = face(cold_left=False).unsqueeze(0)
    full_map = torch.zeros(1, 16, 16)
    full_map[0, 4:8, 10:14] = 1.0  # attention on the right-side spot
    readout = thermal_readout(full_map, signals, 16 / 128)
    assert (readout.left.item(), readout.right.item()) == pytest.approx((34.0, 32.0))
    record = readout_records(readout, ["intensity"], ReadoutOptions())[0]
    assert record["colder_side"] == "right" and record["units"] == "intensity"
    assert "threshold" not in record and "exceeds_threshold" not in record


def test_unknown_pixels_drop_out_in_pairs_and_an_unknown_region_is_none():
    signals = face().unsqueeze(0)
    signals[0, 4, 2] = math.nan  # one left pixel of the spot
    half_map = torch.zeros(1, 16, 8)
    half_map[0, 4:8, 2:6] = 1.0
    readout = thermal_readout(half_map, signals, 0.125)
    assert (readout.left.item(), readout.right.item()) == pytest.approx((32.0, 34.0))
    empty = thermal_readout(half_map, torch.full((1, 16, 16), math.nan), 0.125)
    record = readout_records(empty, ["celsius"], ReadoutOptions())[0]
    assert record["left"] is None and record["delta"] is None
    assert record["colder_side"] is None and record["exceeds_threshold"] is None


def test_readout_options_are_checked():
    for kwargs in ({"fraction": 0.0}, {"fraction": 1.5}, {"threshold": -1.0}, {"map": ""}):
        with pytest.raises(ConfigurationError, match="Expected argument `readout_"):
            ReadoutOptions(**kwargs)


def test_cold_polarity_draws_each_mirrored_pair_on_its_colder_side():
    signals = torch.stack([face(cold_left=True), face(cold_left=False)])
    half_maps = torch.ones(2, 1, 16, 8)
    cold = choose_sides(signals, "cold", smoothing=1).draw(half_maps)
    assert cold.shape == (2, 1, 16, 16)
    assert bool((cold[0, 0, 4:8, 2:6] == 1).all()) and bool((cold[0, 0, 4:8, 10:14] == 0).all())
    assert bool((cold[1, 0, 4:8, 10:14] == 1).all()) and bool((cold[1, 0, 4:8, 2:6] == 0).all())
    assert bool((cold[:, 0, 12:, :] == 1).all())  # equal temperatures: both sides, as before
    warm = choose_sides(signals, "warm", smoothing=1).draw(half_maps)
    assert bool((warm[0, 0, 4:8, 2:6] == 0).all()) and bool((warm[0, 0, 4:8, 10:14] == 1).all())
    with pytest.raises(ConfigurationError, match="`polarity`"):
        choose_sides(signals, "none")


class _SpotModel(nn.Module):
    """A conv net whose score for class 1 is the input at the spot of the left face."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(6, 4, 3, padding=1)
        self.classifier = nn.Linear(4, 2)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.bias.zero_()
            self.features.weight[:, 0, 1, 1] = 1.0
            self.classifier.weight.copy_(torch.tensor([[0.0] * 4, [1.0] * 4]))
            self.classifier.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.features(x)).mean((2, 3)))


def _batch(signals: torch.Tensor) -> Batch:
    """Asymmetry inputs with a bright spot where the map should look, and their signals."""
    n = signals.shape[0]
    images = torch.zeros(n, 6, 16, 8)
    images[:, 0, 4:8, 2:6] = 1.0
    return Batch(
        images=images,
        labels=torch.ones(n, dtype=torch.long),
        indices=torch.arange(n),
        paths=[f"f{i}.npy" for i in range(n)],
        original_sizes=[(16, 16)] * n,
        signals=signals,
        input_kinds=["temperature_array"] * n,
        temperatures=[{"min": 32.0, "max": 34.0, "mean": 33.9, "units": "celsius"}] * n,
    )


def test_the_explainer_adds_the_readout_and_draws_on_the_lesion_side():
    signals = torch.stack([face(cold_left=True), face(cold_left=False)])
    mirrored = Explainer(_SpotModel(), ["normal", "icas"], layers=["features"], asymmetry=True)
    sided = Explainer(
        _SpotModel(),
        ["normal", "icas"],
        layers=["features"],
        asymmetry=True,
        lesion_polarity="cold",
        readout=ReadoutOptions(map="features", fraction=0.125),
    )
    both = mirrored(_batch(signals)).items
    one = sided(_batch(signals)).items
    assert [item.thermal_asymmetry["colder_side"] for item in one] == ["left", "right"]
    assert one[0].thermal_asymmetry["delta"] == pytest.approx(-2.0)
    assert one[0].input_kind == "temperature_array" and one[0].temperature["units"] == "celsius"
    assert both[0].thermal_asymmetry["map"] == "fused"
    drawn = one[0].layers["features"].display_map
    assert drawn[4:8, 2:6].min() > 0.5 and drawn[4:8, 10:14].max() == 0
    mirror = both[0].layers["features"].display_map
    assert torch.allclose(mirror[:, :8], mirror[:, 8:].flip(-1))
    x_left = one[0].layers["features"].statistics["center_of_mass"][0]
    x_right = one[1].layers["features"].statistics["center_of_mass"][0]
    assert x_left < 8 <= x_right  # statistics follow the drawn map
    with pytest.raises(ConfigurationError, match="`readout_map`"):
        Explainer(_SpotModel(), ["a", "b"], layers=["features"], readout=ReadoutOptions("x"))


def test_the_report_gives_the_readout_per_class_and_counts_the_flagged():
    def record(label: str, delta: float, units: str = "celsius") -> dict:
        readout = {"delta": delta, "colder_side": "left" if delta < 0 else "right", "units": units}
        if units == "celsius":
            readout.update(threshold=0.4, exceeds_threshold=abs(delta) > 0.4)
        return {
            "image_path": f"{label}{delta}.npy", "status": "ok", "predicted_class": 0,
            "predicted_label": label, "confidence": 0.9, "true_label": label,
            "thermal_asymmetry": {**readout, "region_fraction": 0.1, "map": "fused"},
            "gradcam_results": {},
        }  # fmt: skip

    records = [record("icas", -1.2), record("icas", -0.6), record("icas", 0.1)]
    records += [record("normal", 0.05), record("normal", -0.1), record("normal", 20.0, "intensity")]
    rows = thermal_asymmetry_summary(records, ["icas", "normal"])
    assert [(r["class"], r["units"], r["images"]) for r in rows] == [
        ("icas", "celsius", 3), ("normal", "celsius", 2), ("normal", "intensity", 1),
    ]  # fmt: skip
    icas = rows[0]
    assert icas["flagged"] == 2 and icas["colder_left"] == 2 and icas["colder_right"] == 1
    assert icas["delta"]["median"] == pytest.approx(-0.6)
    assert "flagged" not in rows[2]
    report = build_summary(records, class_names=["icas", "normal"])
    assert "Left-right thermal readout (top 10% of the fused map" in report
    assert "flagged: |delta| above 0.4 C" in report
    section = report.split("Left-right thermal readout")[1].splitlines()
    line = next(text for text in section if text.strip().startswith("icas"))
    assert line.split()[-1] == "2" and "-0.567" in line
