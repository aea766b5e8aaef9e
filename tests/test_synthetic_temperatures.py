"""Synthetic faces as temperatures, with cold lesions and their recorded side."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thermal_explain.cli.main import main
from thermal_explain.data.preprocessing import readout_signal
from thermal_explain.data.synthetic import make_synthetic_dataset, render_face
from thermal_explain.data.temperature_files import (
    lesion_side,
    read_lesion_table,
    write_temperatures,
)
from thermal_explain.data.thermal import read_input
from thermal_explain.errors import ConfigurationError
from thermal_explain.metrics.readout import thermal_readout


@pytest.mark.parametrize(("fmt", "scale"), [("npy", None), ("tiff", "centikelvin")])
def test_temperature_faces_read_back_with_cold_lesions_on_the_recorded_side(tmp_path, fmt, scale):
    data = make_synthetic_dataset(
        tmp_path, n=8, size=48, seed=2, lesion_polarity="cold", temperatures=fmt
    )
    table = read_lesion_table(tmp_path / "lesions.csv")
    icas = [i for i, label in enumerate(data.labels) if label == 0]
    assert len(table) == len(icas) == 4
    for index in icas:
        path, mask_path = data.paths[index], data.mask_paths[index]
        source = read_input(path, scale)
        assert source.kind == "temperature_array" and source.size == (48, 48)
        assert source.statistics()["min"] > 20.0 and source.statistics()["max"] < 37.0
        mask = read_input(mask_path).pixels[:, :, 0] > 0
        side = table[path.name]
        assert side == data.lesion_sides[index] == lesion_side(mask)
        assert (mask[:, :24].sum() > mask[:, 24:].sum()) == (side == "left")
        lesion = source.pixels[mask].mean()
        mirror = source.pixels[:, ::-1][mask].mean()
        assert lesion < mirror - 0.5  # cold: the lesion is below its mirror region


def test_the_pictures_stay_the_same_when_temperatures_are_not_asked_for(tmp_path):
    data = make_synthetic_dataset(tmp_path, n=2, size=32, seed=5)
    picture = read_input(data.paths[0]).pixels
    expected, _ = render_face(np.random.default_rng([5, 0]), 32, data.labels[0] == 0)
    np.testing.assert_array_equal(picture, expected)


def test_a_readout_over_the_lesion_names_its_side_on_every_cold_face(tmp_path):
    """The oracle map (the lesion mask) reads the lesion's side from the temperatures."""
    data = make_synthetic_dataset(
        tmp_path, n=24, size=64, seed=7, lesion_polarity="cold", temperatures="npy"
    )
    icas = [i for i, label in enumerate(data.labels) if label == 0]
    signals = torch.stack([readout_signal(read_input(data.paths[i]), 64) for i in icas])
    masks = torch.stack(
        [torch.from_numpy(read_input(data.mask_paths[i]).pixels[:, :, 0] > 0) for i in icas]
    )
    readout = thermal_readout(masks.float(), signals, 0.02)
    colder = ["left" if d < 0 else "right" for d in (readout.left - readout.right).tolist()]
    assert colder == [data.lesion_sides[i] for i in icas]


def test_temperature_files_round_trip_and_refuse_what_they_cannot_hold(tmp_path):
    values = np.array([[-10.0, 0.0], [36.55, 100.0]], np.float32)
    for name in ("t.tif", "t.png"):
        back = read_input(write_temperatures(tmp_path / name, values), "centikelvin").pixels
        np.testing.assert_allclose(back, values, atol=0.006)
    with pytest.raises(ConfigurationError, match="16-bit centi-Kelvin"):
        write_temperatures(tmp_path / "hot.tif", np.full((2, 2), 500.0))
    with pytest.raises(ConfigurationError, match=r"\.npy"):
        write_temperatures(tmp_path / "t.jpg", values)


def test_synth_writes_temperatures_from_the_command_line(tmp_path, capsys):
    code = main(
        [
            "synth", "--out", str(tmp_path), "--n", "4", "--size", "32",
            "--lesion_polarity", "cold", "--temperatures", "tiff",
        ]
    )  # fmt: skip
    assert code == 0 and "lesions.csv" in capsys.readouterr().out
    assert sorted(p.suffix for p in (tmp_path / "images").rglob("face_*")) == [".tif"] * 4
