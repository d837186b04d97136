"""The vision executor: real local OCR (tesseract-ocr, poppler-utils) and a vision endpoint."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from tests.executors.context import make_ctx
from tests.fake_openai import FakeOpenAI
from tests.helpers import require_binary
from worldpool.errors import HandlerError
from worldpool.executors.vision import VisionConfig, read_image, vision_model
from worldpool.worker.hardware import check_claims, detect_hardware


def rendered(text: str, fmt: str) -> bytes:
    """``text`` drawn by matplotlib as a PNG or a one-page PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 2))
    fig.text(0.05, 0.4, text, fontsize=28)
    out = io.BytesIO()
    fig.savefig(out, format=fmt, dpi=100)
    plt.close(fig)
    return out.getvalue()


@pytest.fixture
def ocr_tools() -> None:
    require_binary("tesseract", "tesseract-ocr")
    require_binary("pdftoppm", "poppler-utils")


def ctx_with(data: bytes, **payload: Any) -> Any:
    ctx = make_ctx({"artifact": "page/shot", **payload})
    ctx.input_data["page/shot"] = data
    return ctx


async def test_local_ocr_reads_a_screenshot(ocr_tools: None) -> None:
    result = await read_image(ctx_with(rendered("Welcome back, Alice", "png")), VisionConfig())
    assert "Welcome back, Alice" in result["text"]
    assert result["engine"].startswith("local OCR (tesseract-")
    assert result["pages"] == 1 and result["words"] >= 3


async def test_local_ocr_reads_pdf_pages(ocr_tools: None) -> None:
    result = await read_image(ctx_with(rendered("Invoice 4711", "pdf")), VisionConfig())
    assert "Invoice 4711" in result["text"] and result["pages"] == 1


async def test_unreadable_bytes_fail_the_step_without_retry(ocr_tools: None) -> None:
    with pytest.raises(HandlerError, match="tesseract could not read") as info:
        await read_image(ctx_with(b"not an image at all"), VisionConfig())
    assert info.value.retryable is False


async def test_a_vision_endpoint_gets_the_image_as_an_image_url_part() -> None:
    png = rendered("hi", "png")
    with FakeOpenAI() as server:
        config = VisionConfig(base_url=server.base_url, model="qwen2-vl-72b")
        result = await read_image(ctx_with(png, prompt="What is written?"), config)
        sent = server.requests[0].body
    part = sent["messages"][0]["content"][1]
    assert sent["model"] == "qwen2-vl-72b"
    assert part["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert result["engine"].startswith("vision model qwen2-vl-72b")
    assert vision_model(config) is not None and vision_model(config).engine == "openai-compatible"  # type: ignore[union-attr]


def test_tesseract_is_advertised_under_vision_models_with_ocr(ocr_tools: None) -> None:
    hw = detect_hardware()
    assert [m.engine for m in hw.vision_models] == ["tesseract"]
    assert hw.vision_models[0].supports_ocr and {"tesseract", "pdftoppm"} <= set(hw.tools)


def test_a_claimed_ocr_engine_the_machine_lacks_is_refused() -> None:
    from worldpool.models import Hardware, Location, VisionModel, WorkerProfile

    claimed = Hardware(vision_models=[VisionModel(name="tesseract-5.3.0")])
    profile = WorkerProfile(id="w", location=Location(region="local"), hardware=claimed)
    problems = check_claims(profile, Hardware(tools=[]))
    assert any("tesseract-ocr" in p for p in problems), problems
