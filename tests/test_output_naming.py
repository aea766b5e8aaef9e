"""Safe output names and same-stem disambiguation."""

from __future__ import annotations

from pathlib import Path

import pytest

from thermal_explain.output.naming import (
    NameResolver,
    class_token,
    inside,
    layer_token,
    output_names,
    sanitize_component,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("patient_001", "patient_001"),
        ("../../etc/passwd", "etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("scan 01  left", "scan_01_left"),
        ("tab\there\nnewline", "tab_here_newline"),
        ('x<y>z:"q"|w?*', "x_y_z_q_w"),
        ("..", "image"),
        ("", "image"),
        ("...hidden", "hidden"),
        ("trailing. ", "trailing"),
        ("CON", "_CON"),
        ("lpt1.scan", "_lpt1.scan"),
        ("热成像_患者01", "热成像_患者01"),
        ("bidi\u202eevil", "bidi_evil"),
        ("v1..2", "v1.2"),
    ],
)
def test_sanitize_component(raw: str, expected: str) -> None:
    assert sanitize_component(raw) == expected


def test_sanitize_limits_length_and_keeps_long_names_distinct() -> None:
    first = sanitize_component("患" * 60 + "a", max_bytes=40)
    second = sanitize_component("患" * 60 + "b", max_bytes=40)
    assert len(first.encode("utf-8")) <= 40
    assert first != second


def test_tokens() -> None:
    assert layer_token("backbone.layer4.1.conv2") == "backbone_layer4_1_conv2"
    assert class_token("icas") == "ICAS"
    assert class_token("../normal") == "NORMAL"
    assert class_token("缺血") == "缺血"


def test_output_names_follow_the_contract() -> None:
    names = output_names("patient_001", "backbone.layer4.1.conv2", "icas")
    base = "patient_001_backbone_layer4_1_conv2_ICAS"
    assert names.heatmap == f"gradcam_heatmaps/{base}_heatmap.png"
    assert names.overlay == f"overlay_images/{base}_overlay.png"
    assert names.figure == f"overlay_images/{base}_overlay_plt.png"
    assert names.feature_map == f"feature_maps/{base}.npy"


@pytest.mark.parametrize(
    "name",
    ["../outside.png", "a/../../outside.png", "/etc/passwd", "a//b.png", "./a.png", "a\\..\\b", ""],
)
def test_inside_refuses_names_that_could_leave_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="escapes"):
        inside(tmp_path, name)


def test_inside_writes_through_a_subfolder_linked_elsewhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "big_disk"
    elsewhere.mkdir()
    root = tmp_path / "out"
    root.mkdir()
    (root / "gradcam_heatmaps").symlink_to(elsewhere, target_is_directory=True)
    target = inside(root, "gradcam_heatmaps/a.png")
    assert target == root / "gradcam_heatmaps" / "a.png"
    target.write_bytes(b"png")
    assert (elsewhere / "a.png").read_bytes() == b"png"


def test_colliding_stems_get_deterministic_suffixes() -> None:
    paths = ["data/icas/001.jpg", "data/normal/001.jpg", "data/icas/002.jpg"]
    resolver = NameResolver(paths)
    icas, normal = resolver.stem_for(paths[0]), resolver.stem_for(paths[1])
    assert icas != normal
    assert icas.startswith("001_icas_") and normal.startswith("001_normal_")
    assert resolver.stem_for(paths[2]) == "002"
    # Order does not matter and a fresh resolver (a resumed run) agrees.
    again = NameResolver(reversed(paths))
    assert again.stem_for(paths[1]) == normal
    assert again.stem_for(paths[0]) == icas


def test_case_only_differences_collide() -> None:
    resolver = NameResolver(["a/Scan.jpg", "a/scan.png"])
    assert resolver.stem_for("a/Scan.jpg").casefold() != resolver.stem_for("a/scan.png").casefold()


def test_without_full_list_the_later_path_is_renamed() -> None:
    resolver = NameResolver()
    assert resolver.stem_for("icas/001.jpg") == "001"
    assert resolver.stem_for("icas/001.jpg") == "001"
    assert resolver.stem_for("normal/001.jpg").startswith("001_normal_")


def test_names_from_an_earlier_run_are_kept() -> None:
    resolver = NameResolver(["icas/001.jpg", "normal/001.jpg"], claimed={"icas/001.jpg": "001"})
    assert resolver.stem_for("icas/001.jpg") == "001"
    assert resolver.stem_for("normal/001.jpg") != "001"
