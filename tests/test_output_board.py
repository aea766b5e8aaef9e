"""Images logged to TensorBoard through the fast encoder."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from thermal_explain.output.board import log_image, log_previews


def test_a_summary_writer_gets_the_same_pixels(tmp_path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    writer = SummaryWriter(str(tmp_path))
    log_image(writer, "overlays/face/layer4", pixels, 3)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    (event,) = events.Images("overlays/face/layer4")
    assert (event.step, event.width, event.height) == (3, 20, 12)
    with Image.open(io.BytesIO(event.encoded_image_string)) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_other_loggers_get_add_image() -> None:
    calls = []

    class Logger:
        def add_image(self, tag, image, global_step=None, dataformats="CHW"):
            calls.append((tag, image.shape, global_step, dataformats))

    log_image(Logger(), "t", np.zeros((4, 5, 3), np.uint8), 7)
    assert calls == [("t", (4, 5, 3), 7, "HWC")]


def test_a_failing_logger_is_reported_once_and_left(caplog: pytest.LogCaptureFixture) -> None:
    tried = []

    class Full:
        def add_image(self, tag, image, global_step=None, dataformats="CHW"):
            tried.append(tag)
            raise OSError("No space left on device")

    pixels = np.zeros((4, 5, 3), np.uint8)
    previews = [("a", pixels, 1), ("b", pixels, 1)]
    assert log_previews(Full(), previews) is False
    assert tried == ["a"]
    assert "TensorBoard logging stopped: No space left on device" in caplog.text


def test_records_are_checksummed_in_c_with_tensorboards_own_values(tmp_path) -> None:
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
    from tensorboard.summary.writer import record_writer

    from thermal_explain.output.board import use_fast_checksums

    assert use_fast_checksums()
    fast = record_writer.masked_crc32c
    assert fast is not pywrap_tensorflow.masked_crc32c
    rng = np.random.default_rng(1)
    for size in (0, 1, 12, 1000):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert fast(data) == pywrap_tensorflow.masked_crc32c(data)
    test_a_summary_writer_gets_the_same_pixels(tmp_path)  # the file still reads back
    reader = pywrap_tensorflow.PyRecordReader_New(
        str(next(tmp_path.glob("events.*"))).encode(), 0, b"", None
    )
    reader.GetNext()  # raises DataLossError on a wrong checksum
