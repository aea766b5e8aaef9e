"""The left-right thermal readout, side-resolved drawing and what they add to records."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thermal_explain.cam.asymmetry import choose_sides, face_pairs
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

SIZE = 24


def face(cold_left: bool = True, shift: int = 0) -> torch.Tensor:
    """``(24, 24)`` degrees: a 34 C face on a 22 C room, a 2-degree colder 4x4 spot on one
    side (rows 8-11, columns 5-8 or their mirror 15-18); ``shift`` moves the face right."""
    values = torch.full((SIZE, SIZE), 22.0)
    values[2:22, 2 + shift : 22 + shift] = 34.0
    columns = slice(5, 9) if cold_left else slice(SIZE - 9, SIZE - 5)
    values[8:12, columns] = 32.0
    return values


def spot_map() -> torch.Tensor:
    """``(1, 24, 12)`` half-width map that is 1 on the spot's positions, 0 elsewhere."""
    half_map = torch.zeros(1, SIZE, SIZE // 2)
    half_map[0, 8:12, 5:9] = 1.0
    return half_map


def test_the_attended_region_is_the_top_fraction_of_the_map():
    maps = torch.arange(40.0).view(1, 5, 8)
    region = attended_region(maps, 0.1)
    assert region.sum() == 4 and bool(region[0, 4, 4:].all())
    assert attended_region(torch.zeros(1, 2, 2), 0.01).sum() == 1  # at least one position
    allowed = torch.zeros(1, 5, 8, dtype=torch.bool)
    allowed[0, 0] = True  # only the first row may be taken: its best 10 % is one position
    assert attended_region(maps, 0.1, allowed)[0].nonzero().tolist() == [[0, 7]]


def test_readout_on_the_half_width_grid_compares_the_region_with_its_mirror():
    readout = thermal_readout(spot_map(), face(cold_left=True).unsqueeze(0), 0.05, 5.0)
    assert readout.left.item() == pytest.approx(32.0)
    assert readout.right.item() == pytest.approx(34.0)
    record = readout_records(readout, ["celsius"], ReadoutOptions(fraction=0.05))[0]
    assert record == {
        "left": 32.0, "right": 34.0, "delta": -2.0, "colder_side": "left",
        "units": "celsius", "region_fraction": 0.05, "map": "fused",
        "threshold": 0.4, "exceeds_threshold": True,
    }  # fmt: skip


def test_readout_of_a_full_width_map_folds_it_about_the_midline():
    full_map = torch.zeros(1, SIZE, SIZE)
    full_map[0, 8:12, 15:19] = 1.0  # attention on the right-side spot
    readout = thermal_readout(full_map, face(cold_left=False).unsqueeze(0), 0.05)
    assert (readout.left.item(), readout.right.item()) == pytest.approx((34.0, 32.0))
    record = readout_records(readout, ["intensity"], ReadoutOptions())[0]
    assert record["colder_side"] == "right" and record["units"] == "intensity"
    assert "threshold" not in record and "exceeds_threshold" not in record


def test_the_outline_of_an_off_centre_face_is_not_read_as_an_asymmetry():
    """Skin paired with the room along the outline would read 12 degrees of asymmetry."""
    signals = face(cold_left=True, shift=1).unsqueeze(0)
    outline_map = torch.zeros(1, SIZE, SIZE // 2)
    outline_map[0, :, 2] = 1.0  # the column where skin (right) faces the room (left)
    outline_map[0, 8:12, 5:9] = 0.5
    naive = thermal_readout(outline_map, signals, 0.05)
    assert naive.left.item() - naive.right.item() < -5  # the outline, not the spot
    on_face = thermal_readout(outline_map, signals, 0.05, 5.0)
    assert on_face.left.item() - on_face.right.item() == pytest.approx(-2.0)
    pairs = face_pairs(signals, 5.0)[0]
    assert not bool(pairs[:, :4].any()) and bool(pairs[8:12, 5:9].all())
    tight = torch.full((1, SIZE, SIZE), 34.0)
    tight[0, 8:12, 5:9] = 32.0  # a crop of skin only: the spot is not background
    assert bool(face_pairs(tight, 5.0).all())


def test_unknown_pixels_drop_out_in_pairs_and_an_unknown_region_is_none():
    signals = face().unsqueeze(0)
    signals[0, 8, 5] = math.nan  # one left pixel of the spot
    readout = thermal_readout(spot_map(), signals, 0.05, 5.0)
    assert (readout.left.item(), readout.right.item()) == pytest.approx((32.0, 34.0))
    empty = thermal_readout(spot_map(), torch.full((1, SIZE, SIZE), math.nan), 0.1, 5.0)
    record = readout_records(empty, ["celsius"], ReadoutOptions())[0]
    assert record["left"] is None and record["delta"] is None
    assert record["colder_side"] is None and record["exceeds_threshold"] is None


def test_readout_options_are_checked():
    for kwargs in ({"fraction": 0.0}, {"fraction": 1.5}, {"threshold": -1.0}, {"map": ""}):
        with pytest.raises(ConfigurationError, match="Expected argument `readout_"):
            ReadoutOptions(**kwargs)


def test_cold_polarity_draws_each_mirrored_pair_on_its_colder_side():
    signals = torch.stack([face(cold_left=True), face(cold_left=False)])
    half_maps = torch.ones(2, 1, SIZE, SIZE // 2)
    cold = choose_sides(signals, "cold", smoothing=1).draw(half_maps)
    assert cold.shape == (2, 1, SIZE, SIZE)
    assert bool((cold[0, 0, 8:12, 5:9] == 1).all()) and bool((cold[0, 0, 8:12, 15:19] == 0).all())
    assert bool((cold[1, 0, 8:12, 15:19] == 1).all()) and bool((cold[1, 0, 8:12, 5:9] == 0).all())
    assert bool((cold[:, 0, 16:20, :] == 1).all())  # equal temperatures: both sides, as before
    warm = choose_sides(signals, "warm", smoothing=1).draw(half_maps)
    assert bool((warm[0, 0, 8:12, 5:9] == 0).all()) and bool((warm[0, 0, 8:12, 15:19] == 1).all())
    shifted = face(cold_left=True, shift=1).unsqueeze(0)
    naive = choose_sides(shifted, "cold", smoothing=1).draw(half_maps[:1])
    assert naive[0, 0, 10, 2] == 1 and naive[0, 0, 10, 21] == 0  # the room side is colder
    on_face = choose_sides(shifted, "cold", smoothing=1, min_gap=5.0).draw(half_maps[:1])
    assert on_face[0, 0, 10, 2] == on_face[0, 0, 10, 21] == 1  # the outline: both sides
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
    images = torch.zeros(n, 6, SIZE, SIZE // 2)
    images[:, 0, 8:12, 5:9] = 1.0
    return Batch(
        images=images,
        labels=torch.ones(n, dtype=torch.long),
        indices=torch.arange(n),
        paths=[f"f{i}.npy" for i in range(n)],
        original_sizes=[(SIZE, SIZE)] * n,
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
        readout=ReadoutOptions(map="features", fraction=0.05),
    )
    both = mirrored(_batch(signals)).items
    one = sided(_batch(signals)).items
    assert [item.thermal_asymmetry["colder_side"] for item in one] == ["left", "right"]
    assert one[0].thermal_asymmetry["delta"] == pytest.approx(-2.0)
    assert one[0].input_kind == "temperature_array" and one[0].temperature["units"] == "celsius"
    assert both[0].thermal_asymmetry["map"] == "fused"
    drawn = one[0].layers["features"].display_map
    assert drawn[8:12, 5:9].min() > 0.5 and drawn[8:12, 15:19].max() == 0
    mirror = both[0].layers["features"].display_map
    assert torch.allclose(mirror[:, :12], mirror[:, 12:].flip(-1))
    x_left = one[0].layers["features"].statistics["center_of_mass"][0]
    x_right = one[1].layers["features"].statistics["center_of_mass"][0]
    assert x_left < 12 <= x_right  # statistics follow the drawn map
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


def _ranked_region(maps: torch.Tensor, fraction: float, allowed: torch.Tensor) -> torch.Tensor:
    """The attended region by a full stable sort (the definition)."""
    flat, allowed = maps.flatten(1), allowed.flatten(1)
    available = allowed.sum(1)
    wanted = (fraction * available.float()).round().long().clamp_min(1).minimum(available)
    ranked = torch.where(allowed, flat, -torch.inf).argsort(dim=1, descending=True, stable=True)
    keep = torch.arange(flat.shape[1]) < wanted.unsqueeze(1)
    return torch.zeros_like(allowed).scatter_(1, ranked, keep).view_as(maps)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 1.0])
def test_attended_region_equals_a_full_stable_sort_with_ties_and_masks(fraction):
    generator = torch.Generator().manual_seed(3)
    maps = torch.randint(0, 6, (7, 9, 5), generator=generator).float()  # many ties
    allowed = torch.rand(7, 9, 5, generator=generator) > 0.3
    allowed[0] = True
    allowed[1] = False  # nothing allowed: no region
    allowed[2] = False
    allowed[2, 4, 4] = True  # one position allowed
    region = attended_region(maps, fraction, allowed)
    assert torch.equal(region, _ranked_region(maps, fraction, allowed))
    assert not region[1].any() and region[2].sum() == 1
