"""What a GPU worker serves: the seed profile's ``llm_inference`` and ``vision_models``.

:class:`ServedModel` is one LLM behind the worker's endpoint: its context length, output
speed and the concurrent requests it sustains. ``measured_at`` is set when the worker
measured the figures itself (``--llm-url`` benchmarks the endpoint at start and now and
then); a figure only claimed in config has ``measured_at=None``. :class:`VisionModel` is
a multimodal engine (an OpenAI-compatible vision model, or local OCR with Tesseract).
"""

from __future__ import annotations

from pydantic import Field

from worldpool.models.base import Model


class ServedModel(Model):
    """An LLM a worker serves (through vLLM, SGLang, Ollama, llama.cpp, ...)."""

    name: str
    context_tokens: int = Field(default=8192, gt=0)
    tokens_per_s: float = Field(default=0.0, ge=0, description="output tokens/s, one request")
    concurrent_requests: int = Field(default=1, ge=1, description="sustained in parallel")
    measured_at: float | None = Field(
        default=None, description="when the worker measured speed and concurrency (None: claimed)"
    )


class VisionModel(Model):
    """A vision engine: screenshot analysis, OCR of images and PDF pages."""

    name: str = Field(description="a model name, or 'tesseract' for local OCR")
    supports_ocr: bool = True
    supports_image_gen: bool = False
    engine: str = Field(default="tesseract", description="'tesseract' or 'openai-compatible'")
