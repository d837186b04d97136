"""The ``vision`` handler: read a screenshot or a PDF, on the GPU workers' path.

Two engines, one payload. With a vision endpoint configured (``WORLDPOOL_VISION_BASE_URL``
and ``WORLDPOOL_VISION_MODEL``, or a config mapping), the image goes to that
OpenAI-compatible server as an ``image_url`` content part, through the ``llm`` executor's
client (retries, usage and cost included). Without one, OCR runs locally: Debian's
``tesseract-ocr`` reads images, ``poppler-utils``' ``pdftoppm`` turns PDF pages into
images first. A step's payload::

    {"artifact": "verify_browser/login.png",   # an input artifact (image or PDF)
     "prompt": "What does the page say?",      # for an endpoint; OCR ignores it
     "pages": 3, "lang": "eng"}                # PDF pages read (first N), Tesseract language

:func:`vision_model` is what a worker advertises under the profile's vision models.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worldpool.errors import HandlerError
from worldpool.models import VisionModel
from worldpool.worker.handlers import Handler, TaskContext
from worldpool.worker.hardware import tesseract_version

ENV_PREFIX = "WORLDPOOL_VISION_"
DEFAULT_PROMPT = "Describe this image and quote the text you can read on it."
OCR_TIMEOUT_S = 60.0


class VisionConfig(BaseModel):
    """A worker's vision engine: an endpoint when ``base_url`` is set, else local OCR."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+")
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = Field(default=256, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    lang: str = "eng"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> VisionConfig:
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        values.update(overrides or {})
        return cls.model_validate(values)


def vision_model(config: VisionConfig) -> VisionModel | None:
    """What this worker can advertise under vision models (None: no engine here)."""
    if config.base_url and config.model:
        return VisionModel(name=config.model, engine="openai-compatible", supports_ocr=True)
    version = tesseract_version()
    if version is None:
        return None
    return VisionModel(name=f"tesseract-{version}", engine="tesseract", supports_ocr=True)


def _ocr_image(path: Path, lang: str) -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise HandlerError(
            "no vision endpoint configured and Tesseract is not installed: install the "
            "Debian package 'tesseract-ocr' or set WORLDPOOL_VISION_BASE_URL",
            retryable=False,
        )
    done = subprocess.run(
        [exe, str(path), "stdout", "-l", lang],
        capture_output=True,
        timeout=OCR_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[-300:]
        raise HandlerError(f"tesseract could not read the image: {detail}", retryable=False)
    return done.stdout.decode(errors="replace")


def _pdf_pages(pdf: Path, out: Path, pages: int) -> list[Path]:
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise HandlerError(
            "reading a PDF needs pdftoppm: install the Debian package 'poppler-utils'",
            retryable=False,
        )
    done = subprocess.run(
        [exe, "-r", "150", "-png", "-f", "1", "-l", str(pages), str(pdf), str(out / "page")],
        capture_output=True,
        timeout=OCR_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[-300:]
        raise HandlerError(f"pdftoppm could not render the PDF: {detail}", retryable=False)
    return sorted(out.glob("page*.png"))


def ocr(data: bytes, *, lang: str = "eng", pages: int = 3) -> list[str]:
    """The text of an image, or of each of a PDF's first ``pages`` pages."""
    with tempfile.TemporaryDirectory(prefix="wp-ocr-") as tmp:
        folder = Path(tmp)
        source = folder / ("input.pdf" if data[:5] == b"%PDF-" else "input.img")
        source.write_bytes(data)
        images = _pdf_pages(source, folder, pages) if source.suffix == ".pdf" else [source]
        return [_ocr_image(image, lang).strip() for image in images]


def _media_type(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise HandlerError("a vision endpoint takes PNG, JPEG or WebP images", retryable=False)


async def _ask_endpoint(ctx: TaskContext, config: VisionConfig, data: bytes) -> dict[str, Any]:
    from worldpool.executors.llm import LLMConfig, chat

    url = f"data:{_media_type(data)};base64,{base64.b64encode(data).decode()}"
    prompt = str(ctx.payload.get("prompt") or DEFAULT_PROMPT)
    llm_config = LLMConfig(
        base_url=str(config.base_url),
        model=str(config.model),
        api_key_env=config.api_key_env,
        timeout_s=config.timeout_s,
    )
    content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]
    saved, ctx.payload = (
        ctx.payload,
        {"messages": [{"role": "user", "content": content}], "max_tokens": config.max_tokens},
    )
    try:
        answer = await chat(ctx, llm_config)
    finally:
        ctx.payload = saved
    return {
        "engine": f"vision model {answer['model']} at {config.base_url}",
        "text": answer["content"],
        "pages": 1,
        "tokens_in": answer["tokens_in"],
        "tokens_out": answer["tokens_out"],
    }


async def read_image(ctx: TaskContext, config: VisionConfig) -> dict[str, Any]:
    """Run one ``vision`` step (see the module docstring for the payload)."""
    name = ctx.payload.get("artifact")
    if not isinstance(name, str) or not name:
        raise HandlerError("vision payload needs 'artifact': an input's name", retryable=False)
    data = ctx.read(name)
    if config.base_url and config.model:
        result = await _ask_endpoint(ctx, config, data)
    else:
        pages = int(ctx.payload.get("pages", 3))
        lang = str(ctx.payload.get("lang", config.lang))
        texts = await asyncio.to_thread(ocr, data, lang=lang, pages=pages)
        model = vision_model(config)
        result = {
            "engine": f"local OCR ({model.name if model else 'tesseract'})",
            "text": "\n\n".join(texts),
            "pages": len(texts),
        }
    result["artifact"] = name
    result["words"] = len(str(result["text"]).split())
    return result


def handlers(config: VisionConfig | Mapping[str, Any] | None = None) -> dict[str, Handler]:
    """``{"vision": handler}``. A mapping (or None) is laid over ``WORLDPOOL_VISION_*``."""
    cfg = config if isinstance(config, VisionConfig) else VisionConfig.from_env(overrides=config)

    async def vision(ctx: TaskContext) -> dict[str, Any]:
        return await read_image(ctx, cfg)

    return {"vision": vision}
