"""ResultWriter end to end: layout, record, resume, ranks, safety, backpressure."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from thermal_explain.errors import ConfigurationError, ThermalExplainError
from thermal_explain.output import ResultWriter, finalize_results, pool, render_pool
from thermal_explain.output.html.pictures import picture_paths
from thermal_explain.output.journal import journal_path
from thermal_explain.types import ExplainedImage, FailedItem, LayerExplanation

LAYERS = ["backbone.layer3.1.conv2", "backbone.layer4.1.conv2"]
CLASSES = ["ICAS", "NORMAL"]
RECORD_KEYS = [
    "image_path",
    "predicted_class",
    "predicted_label",
    "confidence",
    "true_label",
    "status",
    "input_kind",
    "gradcam_results",
]
ERROR_KEYS = [*RECORD_KEYS[:6], "error", "gradcam_results"]


def _image(path: Path, size: tuple[int, int] = (24, 32), seed: int = 0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    cv2.imencode(".png", pixels)[1].tofile(str(path))
    return str(path)


def _statistics() -> dict[str, Any]:
    return {
        "max_activation": 1.0,
        "mean_activation": torch.tensor(0.25),
        "std_activation": np.float32(0.125),
        "activation_area": 0.5,
        "center_of_mass": (3, 4),
    }


def _explained(
    path: str,
    index: int = 0,
    *,
    predicted: int = 0,
    truth: str | None = "ICAS",
    layers: list[str] = LAYERS,
    side: dict[str, float] | None = None,
    metrics: dict[str, Any] | None = None,
) -> ExplainedImage:
    generator = torch.Generator().manual_seed(index)
    return ExplainedImage(
        image_path=path,
        index=index,
        predicted_class=predicted,
        predicted_label=CLASSES[predicted],
        confidence=0.75,
        true_label=truth,
        target_label=CLASSES[predicted],
        layers={
            layer: LayerExplanation(
                display_map=torch.rand(16, 16, generator=generator),
                raw_map=torch.rand(4, 4, generator=generator) * 3,
                statistics=_statistics(),
                side_attribution=side,
                metrics=dict(metrics or {}),
            )
            for layer in layers
        },
    )


def _writer(output: Path, **options: Any) -> ResultWriter:
    settings: dict[str, Any] = {"class_names": CLASSES, "layers": LAYERS, "workers": 0}
    settings.update(options)
    return ResultWriter(output, **settings)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_layout_and_record_follow_the_contract(tmp_path: Path) -> None:
    source = _image(tmp_path / "in" / "patient_001.png")
    item = _explained(source)
    output = tmp_path / "out"
    with _writer(output) as writer:
        writer.submit([item])
    base = "patient_001_backbone_layer4_1_conv2_ICAS"
    assert f"{base}_heatmap.png" in _files(output / "gradcam_heatmaps")
    assert {f"{base}_overlay.png", f"{base}_overlay_plt.png"} <= set(
        _files(output / "overlay_images")
    )
    assert f"{base}.npy" in _files(output / "feature_maps")

    records = json.loads((output / "analysis_results.json").read_text(encoding="utf-8"))
    assert len(records) == 1 and list(records[0]) == RECORD_KEYS
    record = records[0]
    assert record["status"] == "ok" and record["predicted_label"] == "ICAS"
    assert list(record["gradcam_results"]) == LAYERS
    entry = record["gradcam_results"][LAYERS[1]]
    assert list(entry) == ["heatmap_path", "overlay_path", "overlay_plt_path", "feature_statistics"]
    assert entry["feature_statistics"] == {
        "max_activation": 1.0,
        "mean_activation": 0.25,
        "std_activation": 0.125,
        "activation_area": 0.5,
        "center_of_mass": [3, 4],
    }
    for key in ("heatmap_path", "overlay_path", "overlay_plt_path"):
        assert Path(entry[key]).is_file() and Path(entry[key]).is_relative_to(output)

    heatmap = cv2.imread(entry["heatmap_path"])
    assert heatmap.shape == (24, 32, 3)  # the original size, not the 16x16 map
    original = cv2.imread(source)
    gray = cv2.cvtColor(cv2.cvtColor(original, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    expected = cv2.addWeighted(gray, 0.3, heatmap, 0.7, 0.0)
    np.testing.assert_array_equal(cv2.imread(entry["overlay_path"]), expected)
    with Image.open(entry["overlay_plt_path"]) as figure:
        assert round(figure.info["dpi"][0]) == 300
    saved = np.load(output / "feature_maps" / f"{base}.npy")
    assert saved.dtype == np.float32
    np.testing.assert_array_equal(saved, item.layers[LAYERS[1]].raw_map.numpy())
    assert "ok: 1, failed: 0" in (output / "summary_report.txt").read_text(encoding="utf-8")


def test_alphas_and_colormap_are_configurable(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.png")
    with _writer(
        tmp_path / "out",
        original_alpha=0.0,
        heatmap_alpha=1.0,
        colormap="viridis",
        save_figures=False,
    ) as writer:
        writer.submit([_explained(source)])
    entry = json.loads((tmp_path / "out/analysis_results.json").read_text())[0]
    layer = entry["gradcam_results"][LAYERS[0]]
    np.testing.assert_array_equal(
        cv2.imread(layer["overlay_path"]), cv2.imread(layer["heatmap_path"])
    )


def test_switched_off_outputs_are_null_and_absent(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.png")
    output = tmp_path / "out"
    with _writer(output, save_heatmaps=False, save_figures=False, save_feature_maps=False) as w:
        w.submit([_explained(source)])
    entry = json.loads((output / "analysis_results.json").read_text())[0]["gradcam_results"]
    for layer in LAYERS:
        assert entry[layer]["heatmap_path"] is None
        assert entry[layer]["overlay_plt_path"] is None
        assert Path(entry[layer]["overlay_path"]).is_file()
    assert _files(output / "gradcam_heatmaps") == [] and _files(output / "feature_maps") == []
    assert all(name.endswith("_overlay.png") for name in _files(output / "overlay_images"))


def test_side_attribution_and_metrics_join_the_layer_entry(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.png")
    metrics = {"deletion_auc": np.float64(0.25), "heatmap_path": "not allowed", "nan": float("nan")}
    item = _explained(source, side={"left": 0.75, "right": 0.25}, metrics=metrics)
    records = _writer(tmp_path / "out", save_figures=False)
    records.submit([item])
    entry = records.close()[0]["gradcam_results"][LAYERS[0]]
    assert entry["side_attribution"] == {"left": 0.75, "right": 0.25}
    assert entry["deletion_auc"] == 0.25 and entry["nan"] is None
    assert entry["heatmap_path"] != "not allowed"
    assert "Side attribution" in (tmp_path / "out/summary_report.txt").read_text()


def test_failures_are_recorded_not_fatal(tmp_path: Path) -> None:
    good = _image(tmp_path / "good.png")
    output = tmp_path / "out"
    with _writer(output, save_figures=False) as writer:
        writer.record_failures([FailedItem(str(tmp_path / "bad.jpg"), "cannot decode", "ICAS")])
        writer.submit([_explained(str(tmp_path / "vanished.png")), _explained(good)])
    records = {Path(r["image_path"]).name: r for r in json.loads((output / RESULTS).read_text())}
    assert records["good.png"]["status"] == "ok"
    bad, vanished = records["bad.jpg"], records["vanished.png"]
    assert (
        list(bad) == ERROR_KEYS and bad["error"] == "cannot decode" and bad["true_label"] == "ICAS"
    )
    assert vanished["status"] == "error" and "vanished.png" in vanished["error"]
    assert vanished["predicted_label"] == "ICAS"  # what is known is kept
    report = (output / "summary_report.txt").read_text()
    assert "ok: 1, failed: 2" in report and "bad.jpg: cannot decode" in report


RESULTS = "analysis_results.json"


def test_resume_skips_done_and_retries_failed(tmp_path: Path) -> None:
    paths = [_image(tmp_path / "in" / f"{i}.png", seed=i) for i in range(3)]
    output = tmp_path / "out"
    with _writer(output, save_figures=False) as first:
        first.submit([_explained(paths[0]), _explained(paths[1])])
        first.record_failures([FailedItem(paths[2], "cannot read")])
    second = _writer(output, save_figures=False)
    assert second.done_paths() == {paths[0], paths[1]}
    assert second.filter_pending([os.path.relpath(p) for p in paths]) == [os.path.relpath(paths[2])]
    second.submit([_explained(paths[2])])
    records = second.close()
    assert [r["status"] for r in records] == ["ok", "ok", "ok"]
    assert [r["image_path"] for r in records] == sorted(paths)
    heatmap = records[2]["gradcam_results"][LAYERS[0]]["heatmap_path"]
    assert Path(heatmap).name == "2_backbone_layer3_1_conv2_ICAS_heatmap.png"


def test_overwrite_starts_over_but_keeps_foreign_files(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.png")
    output = tmp_path / "out"
    with _writer(output) as writer:
        writer.submit([_explained(source)])
    (output / "overlay_images" / "notes.txt").write_text("mine")
    fresh = _writer(output, overwrite=True)
    assert fresh.done_paths() == set()
    assert _files(output / "gradcam_heatmaps") == [] and _files(output / "feature_maps") == []
    assert _files(output / "overlay_images") == ["notes.txt"]
    assert not (output / RESULTS).exists() and not (output / "summary_report.txt").exists()
    assert fresh.close() == []


def test_clear_removes_every_rank_and_nothing_foreign(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.png")
    output = tmp_path / "out"
    for rank in (0, 3):
        writer = _writer(output, rank=rank, save_figures=False)
        writer.submit([_explained(source)])
        writer.close(finalize=rank == 0)
    (output / "gradcam_heatmaps" / "keep.png").write_bytes(b"not ours")
    ResultWriter.clear(output)
    assert _files(output / ".journal") == []
    assert _files(output / "gradcam_heatmaps") == ["keep.png"]
    assert not (output / RESULTS).exists()
    ResultWriter.clear(tmp_path / "never_created")
    assert not (tmp_path / "never_created").exists()


def test_killed_run_leaves_a_readable_journal(tmp_path: Path) -> None:
    paths = [_image(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    output = tmp_path / "out"
    first = _writer(output, save_figures=False)
    first.submit([_explained(paths[0])])
    first.close(finalize=False)
    with open(journal_path(output, 0), "ab") as journal:
        journal.write(b'{"stem": "1", "record": {"image_pa')  # killed mid-write
    assert not (output / RESULTS).exists()
    second = _writer(output, save_figures=False)
    assert second.done_paths() == {paths[0]}
    second.submit([_explained(paths[1])])
    assert [r["image_path"] for r in second.close()] == paths


def test_ranks_write_separate_journals_merged_once(tmp_path: Path) -> None:
    paths = [_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    output = tmp_path / "out"
    rank0 = _writer(output, rank=0, save_figures=False, all_paths=paths)
    rank1 = _writer(output, rank=1, save_figures=False, all_paths=paths)
    rank0.submit([_explained(paths[0]), _explained(paths[2])])
    rank1.submit([_explained(paths[1])])
    rank1.record_failures([FailedItem(paths[2], "duplicate attempt failed")])
    assert [r["image_path"] for r in rank1.close(finalize=False)] == sorted(paths[1:])
    rank0.close(finalize=False)
    assert not (output / RESULTS).exists()
    assert _files(output / ".journal") == ["rank0.jsonl", "rank1.jsonl"]
    records = finalize_results(output, CLASSES, LAYERS)
    assert [r["image_path"] for r in records] == paths
    assert all(r["status"] == "ok" for r in records)  # the success beats the error
    assert json.loads((output / RESULTS).read_text()) == records


def test_same_stem_in_different_folders_do_not_overwrite(tmp_path: Path) -> None:
    paths = [
        _image(tmp_path / "in" / name / "001.png", seed=i)
        for i, name in enumerate(["icas", "normal"])
    ]
    output = tmp_path / "out"
    with _writer(output, save_figures=False, all_paths=paths) as writer:
        writer.submit([_explained(p) for p in paths])
    heatmaps = _files(output / "gradcam_heatmaps")
    assert len(heatmaps) == 2 * len(LAYERS)
    assert any(n.startswith("001_icas_") for n in heatmaps)
    assert any(n.startswith("001_normal_") for n in heatmaps)


def test_unsafe_names_are_written_inside_output_dir(tmp_path: Path) -> None:
    sources = [
        _image(tmp_path / "in" / "..evil...png"),
        _image(tmp_path / "in" / "scan with spaces.png"),
        _image(tmp_path / "in" / "热成像 患者01.png"),
    ]
    output = tmp_path / "deep" / "out"
    output.parent.mkdir()
    layer = "../../../escape"
    before = {p for p in tmp_path.rglob("*")}
    with _writer(output, layers=[layer]) as writer:
        writer.submit([_explained(s, i, layers=[layer]) for i, s in enumerate(sources)])
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p.is_relative_to(output) for p in created)
    heatmaps = _files(output / "gradcam_heatmaps")
    assert "evil_escape_ICAS_heatmap.png" in heatmaps
    assert "scan_with_spaces_escape_ICAS_heatmap.png" in heatmaps
    assert "热成像_患者01_escape_ICAS_heatmap.png" in heatmaps
    records = json.loads((output / RESULTS).read_text(encoding="utf-8"))
    assert {r["image_path"] for r in records} == set(sources)


def test_output_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ThermalExplainError) as caught:
        _writer(blocker)
    assert str(caught.value) == (
        f"output_dir '{blocker}' is a file, not a folder; choose a folder with --output_dir"
    )
    with pytest.raises(ThermalExplainError) as caught:
        _writer(blocker / "out")
    assert str(caught.value) == (
        f"output_dir '{blocker / 'out'}' is not writable; choose another --output_dir"
    )


def test_read_only_output_dir(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        probe = locked / "probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("this user can write into read-only folders (root)")
        with pytest.raises(ThermalExplainError, match="is not writable; choose another"):
            _writer(locked / "out")
        with pytest.raises(ThermalExplainError, match="is not writable; choose another"):
            _writer(locked)
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(
    ("option", "value", "name"),
    [
        ("colormap", "no-such-map", "colormap"),
        ("original_alpha", 1.5, "original_alpha"),
        ("queue_size", 0, "queue_size"),
        ("workers", -1, "workers"),
        ("worker_type", "gpu", "worker_type"),
        ("class_names", "ICAS", "class_names"),
        ("layers", [], "layers"),
        ("tensorboard", object(), "tensorboard"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path: Path, option: str, value: Any, name: str) -> None:
    previous = tmp_path / "out" / RESULTS
    previous.parent.mkdir()
    previous.write_text("[]")
    with pytest.raises(ConfigurationError, match=name):
        _writer(tmp_path / "out", overwrite=True, **{option: value})
    assert previous.exists()  # nothing is cleared before the arguments are checked


class _FakeBoard:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...], int | None, str]] = []
        self.threads: set[str] = set()

    def add_image(
        self, tag: str, image: np.ndarray, global_step: int | None = None, dataformats: str = "CHW"
    ) -> None:
        self.calls.append((tag, image.shape, global_step, dataformats))
        self.threads.add(threading.current_thread().name)


def test_overlays_go_to_tensorboard(tmp_path: Path) -> None:
    source = _image(tmp_path / "patient_7.png")
    board = _FakeBoard()
    with _writer(tmp_path / "out", tensorboard=board, save_figures=False) as writer:
        writer.submit([_explained(source)], step=3)
    # The 32 x 24 original beside its overlay, both enlarged to 213 x 160, under a header.
    assert [(tag, step, form) for tag, _, step, form in sorted(board.calls)] == [
        (f"overlays/patient_7/{layer}", 3, "HWC") for layer in LAYERS
    ]
    assert all(shape[1] == 2 * 213 and shape[0] > 160 + 40 for _, shape, _, _ in board.calls)
    assert len(board.threads) == 1


class _CountingItems(list):  # type: ignore[type-arg]
    """A list that remembers how many items have been taken from it."""

    taken = 0

    def __iter__(self) -> Any:
        for item in super().__iter__():
            self.taken += 1
            yield item


def test_a_full_queue_holds_the_caller_which_renders_a_waiting_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started = threading.Event()
    render = render_pool.run_in_thread
    threads: list[str] = []

    def slow(job: Any, settings: Any) -> Any:
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(timeout=30)
        return render(job, settings)

    monkeypatch.setattr(render_pool, "run_in_thread", slow)
    paths = [_image(tmp_path / f"{i}.png", seed=i) for i in range(5)]
    writer = _writer(
        tmp_path / "out", workers=1, worker_type="thread", queue_size=2, save_figures=False
    )
    items = _CountingItems(_explained(p) for p in paths)
    producer = threading.Thread(target=writer.submit, args=(items,), name="producer")
    producer.start()
    assert started.wait(timeout=30)
    deadline = time.monotonic() + 30
    while (items.taken < 3 or len(threads) < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # Two images hold the two slots; the third waits for one while the caller renders one
    # of them (the worker renders the other); the last two are untouched.
    assert producer.is_alive() and items.taken == 3
    assert sorted(threads) == ["producer", "thermal-explain-render_0"]
    release.set()
    producer.join(timeout=30)
    assert not producer.is_alive()
    assert [r["status"] for r in writer.close()] == ["ok"] * 5


def test_images_still_queued_at_close_render_on_the_drain_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = render_pool.run_in_thread
    threads: set[str] = set()
    both_busy = threading.Barrier(2, timeout=10)

    def paired(job: Any, settings: Any) -> Any:
        threads.add(threading.current_thread().name)
        if job.image_path.endswith(("1.png", "2.png")):
            both_busy.wait()  # only returns once two threads render at the same time
        return render(job, settings)

    monkeypatch.setattr(render_pool, "run_in_thread", paired)
    paths = [_image(tmp_path / f"{i}.png", seed=i) for i in range(4)]
    writer = _writer(
        tmp_path / "out",
        workers=1,
        drain_workers=2,
        worker_type="thread",
        queue_size=8,
        save_figures=False,
    )
    writer.submit([_explained(p) for p in paths])
    assert [r["status"] for r in writer.close()] == ["ok"] * 4
    assert threads == {"thermal-explain-render_0", "thermal-explain-render_1"}


def test_taking_turns_renders_the_batch_before_submit_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    render = render_pool.run_in_thread
    threads: list[str] = []

    def held(job: Any, settings: Any) -> Any:  # the pool's thread keeps its first image
        threads.append(threading.current_thread().name)
        if threading.current_thread().name.startswith("thermal-explain-render"):
            release.wait(timeout=30)
        return render(job, settings)

    monkeypatch.setattr(render_pool, "run_in_thread", held)
    paths = [_image(tmp_path / f"{i}.png", seed=i) for i in range(5)]
    writer = _writer(
        tmp_path / "out", workers=1, take_turns=True, worker_type="thread", save_figures=False
    )
    writer.submit([_explained(p) for p in paths])
    # submit returned with every image taken: the caller rendered all that the held thread
    # did not (without take_turns it returns at once, the queue having room for all five)
    assert len(threads) == 5 and threads.count("MainThread") >= 4
    release.set()
    assert [r["status"] for r in writer.close()] == ["ok"] * 5


def test_a_crashing_render_becomes_an_error_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = render_pool.run_in_thread

    def flaky(job: Any, settings: Any) -> Any:
        if job.image_path.endswith("b.png"):
            raise MemoryError("out of memory while rendering")
        return render(job, settings)

    monkeypatch.setattr(render_pool, "run_in_thread", flaky)
    paths = [_image(tmp_path / name) for name in ("a.png", "b.png")]
    writer = _writer(tmp_path / "out", workers=2, worker_type="thread", save_figures=False)
    writer.submit([_explained(p) for p in paths])
    records = writer.close()
    assert [r["status"] for r in records] == ["ok", "error"]
    assert records[1]["error"] == "writing outputs failed: out of memory while rendering"


def test_journal_failure_is_reported_once_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path / "out", save_figures=False)

    def full(entries: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer._journal, "append", full)
    writer.submit([_explained(_image(tmp_path / "a.png"))])
    with pytest.raises(ThermalExplainError, match="No space left on device; free disk space"):
        writer.close()


def test_process_workers_write_everything(tmp_path: Path) -> None:
    paths = [_image(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    output = tmp_path / "out"
    with _writer(output, workers=1, worker_type="process") as writer:
        writer.submit([_explained(p, i) for i, p in enumerate(paths)])
    records = json.loads((output / RESULTS).read_text())
    assert [r["status"] for r in records] == ["ok", "ok"]
    figure = records[0]["gradcam_results"][LAYERS[0]]["overlay_plt_path"]
    with Image.open(io.BytesIO(Path(figure).read_bytes())) as image:
        assert round(image.info["dpi"][1]) == 300


class _DyingPool(ProcessPoolExecutor):
    """A process pool whose worker exits as soon as it starts."""

    def __init__(self, **options: Any) -> None:
        super().__init__(
            max_workers=1, mp_context=options["mp_context"], initializer=os._exit, initargs=(3,)
        )


def test_a_dead_worker_process_falls_back_to_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render_pool, "ProcessPoolExecutor", _DyingPool)
    paths = [_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    writer = _writer(tmp_path / "out", workers=1, worker_type="process", save_figures=False)
    writer.submit([_explained(p) for p in paths])
    assert [r["status"] for r in writer.close()] == ["ok"] * 3


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_carried_background_spares_reading_the_file_again(
    tmp_path: Path, worker_type: str
) -> None:
    source = _image(tmp_path / "in" / "face.png", size=(24, 32))
    gray = cv2.cvtColor(cv2.imread(source), cv2.COLOR_BGR2GRAY)
    item = _explained(source)
    item.background = gray
    Path(source).unlink()  # only the carried pixels can draw the overlay now
    output = tmp_path / "out"
    with _writer(output, workers=1, worker_type=worker_type) as writer:
        writer.submit([item])
    records = json.loads((output / "analysis_results.json").read_text(encoding="utf-8"))
    assert records[0]["status"] == "ok"
    entry = records[0]["gradcam_results"][LAYERS[0]]
    heatmap = cv2.imread(entry["heatmap_path"])
    expected = cv2.addWeighted(cv2.merge([gray, gray, gray]), 0.3, heatmap, 0.7, 0.0)
    np.testing.assert_array_equal(cv2.imread(entry["overlay_path"]), expected)


def test_pool_size_follows_the_cores_the_engine_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "available_cores", lambda: 16)
    assert pool.default_workers("cuda") == 15  # one core feeds the GPU
    assert pool.default_workers("cuda", processes=4) == 3
    assert pool.default_workers("cpu") == 8  # the CPU engine computes on all cores
    monkeypatch.setattr(pool, "available_cores", lambda: 2)
    assert pool.default_workers("cuda") == pool.default_workers("cpu") == 1
    monkeypatch.setattr(pool, "available_cores", lambda: 1)
    assert pool.default_workers("cuda", processes=2) == 1


def test_auto_starts_processes_only_for_many_workers(tmp_path: Path) -> None:
    paths = [f"img{i}.png" for i in range(pool.PROCESS_MIN_IMAGES)]
    few = _writer(tmp_path / "few", workers=2, worker_type="auto", all_paths=paths)
    many = _writer(tmp_path / "many", workers=4, worker_type="auto", all_paths=paths)
    try:
        assert few._render_pool.worker_type == "thread"
        assert many._render_pool.worker_type == "process"
    finally:
        few.close(finalize=False)
        many.close(finalize=False)


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_workers_draw_the_report_pictures_when_asked(tmp_path: Path, worker_type: str) -> None:
    rows, cols = np.mgrid[0:24, 0:32]
    smooth = np.dstack([rows * 8, cols * 6, 255 - rows * 8]).astype(np.uint8)  # RGB
    paths = [str(tmp_path / f"{index}.png") for index in range(2)]
    for path in paths:
        cv2.imwrite(path, smooth[..., ::-1])
    items = [_explained(path, index) for index, path in enumerate(paths)]
    items[0].original = smooth  # carried by the batch; the other one is read from its file
    output = tmp_path / "out"
    options = {"workers": 1, "worker_type": worker_type, "save_figures": False}
    with _writer(output, report_pictures=True, **options) as writer:
        writer.submit(items)
    for path in paths:
        strip_path, copy_path = picture_paths(path)
        copy = cv2.imread(str(output / copy_path))[..., ::-1]
        assert np.abs(copy.astype(int) - smooth).mean() < 3.0  # the original in colour
        strip = cv2.imread(str(output / strip_path))
        # The original, then one overlay per layer, 2 white pixels apart, at its own height.
        assert strip.shape == (24, 32 * (1 + len(LAYERS)) + 2 * len(LAYERS), 3)
    with _writer(tmp_path / "plain", **options) as writer:
        writer.submit([_explained(paths[0])])
    assert not (tmp_path / "plain" / "report_files").exists()
