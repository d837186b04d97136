"""The browser step's action list and URL policy: validated before Chromium starts.

A step's payload carries ``actions``, a list of objects each naming its ``action``:

    {"action": "goto", "url": "http://app.local/login"}
    {"action": "fill", "selector": "#user", "value": "alice"}
    {"action": "click", "selector": "button[type=submit]"}
    {"action": "press", "key": "Enter", "selector": "#password"}   # selector optional
    {"action": "wait_for", "text": "Welcome"}        # or "selector": "#done"
    {"action": "evaluate", "expression": "document.title"}
    {"action": "screenshot", "name": "after-login", "full_page": true}

Every action takes an optional ``timeout_ms``. Any problem is reported with the action's
index (``actions[2]``) and the reason, so a bad list fails fast and never launches anything.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worldpool.errors import HandlerError

MAX_ACTIONS = 200
_SHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")

Timeout = Annotated[int, Field(gt=0, le=600_000)]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_ms: Timeout | None = None

    def describe(self) -> str:
        """A short label for error messages, e.g. ``click '#submit'``."""
        return str(getattr(self, "action", "?"))


class Goto(_Action):
    action: Literal["goto"] = "goto"
    url: str = Field(min_length=1, max_length=8192)
    wait_until: Literal["load", "domcontentloaded", "networkidle", "commit"] = "load"

    def describe(self) -> str:
        return f"goto {self.url!r}"


class Fill(_Action):
    action: Literal["fill"] = "fill"
    selector: str = Field(min_length=1)
    value: str

    def describe(self) -> str:
        return f"fill {self.selector!r}"


class Click(_Action):
    action: Literal["click"] = "click"
    selector: str = Field(min_length=1)

    def describe(self) -> str:
        return f"click {self.selector!r}"


class Press(_Action):
    action: Literal["press"] = "press"
    key: str = Field(min_length=1, description="Playwright key name: Enter, Tab, Control+A, ...")
    selector: str | None = Field(default=None, description="focus this first; else the page")

    def describe(self) -> str:
        return f"press {self.key!r}" + (f" on {self.selector!r}" if self.selector else "")


class WaitFor(_Action):
    action: Literal["wait_for"] = "wait_for"
    selector: str | None = None
    text: str | None = None
    state: Literal["attached", "detached", "visible", "hidden"] = "visible"

    @model_validator(mode="after")
    def _one_target(self) -> WaitFor:
        if (self.selector is None) == (self.text is None):
            raise ValueError("give exactly one of 'selector' or 'text'")
        return self

    def describe(self) -> str:
        what = f"selector {self.selector!r}" if self.selector is not None else f"text {self.text!r}"
        return f"wait_for {what}"


class Evaluate(_Action):
    action: Literal["evaluate"] = "evaluate"
    expression: str = Field(min_length=1, max_length=100_000)

    def describe(self) -> str:
        first = self.expression.strip().splitlines()[0] if self.expression.strip() else ""
        return f"evaluate {first[:60]!r}"


class Screenshot(_Action):
    action: Literal["screenshot"] = "screenshot"
    name: str
    full_page: bool = False

    @model_validator(mode="after")
    def _plain_name(self) -> Screenshot:
        if not _SHOT_NAME.match(self.name) or ".." in self.name:
            raise ValueError(
                f"screenshot name {self.name!r} must be a plain file name "
                "(letters, digits, '_', '-', '.'; no '/' or '..')"
            )
        return self

    @property
    def artifact_name(self) -> str:
        return self.name if self.name.endswith(".png") else self.name + ".png"

    def describe(self) -> str:
        return f"screenshot {self.name!r}"


Action = Goto | Fill | Click | Press | WaitFor | Evaluate | Screenshot
ACTIONS: dict[str, type[_Action]] = {
    "goto": Goto,
    "fill": Fill,
    "click": Click,
    "press": Press,
    "wait_for": WaitFor,
    "evaluate": Evaluate,
    "screenshot": Screenshot,
}


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def parse_actions(raw: Any) -> list[Action]:
    """Validate a payload's action list; raise a non-retryable HandlerError naming the index."""
    if not isinstance(raw, list) or not raw:
        raise HandlerError(
            "payload 'actions' must be a non-empty list of {\"action\": ..., ...} objects",
            retryable=False,
        )
    if len(raw) > MAX_ACTIONS:
        raise HandlerError(f"too many actions ({len(raw)}); at most {MAX_ACTIONS}", retryable=False)
    known = ", ".join(sorted(ACTIONS))
    actions: list[Action] = []
    shots: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            raise HandlerError(
                f"actions[{index}]: must be an object with an 'action' field (one of {known})",
                retryable=False,
            )
        model = ACTIONS.get(item["action"])
        if model is None:
            raise HandlerError(
                f"actions[{index}]: unknown action {item['action']!r}; known actions: {known}",
                retryable=False,
            )
        try:
            action: Action = model.model_validate(item)  # type: ignore[assignment]
        except ValidationError as exc:
            raise HandlerError(
                f"actions[{index}] ({item['action']}): {_reason(exc)}", retryable=False
            ) from None
        if isinstance(action, Screenshot):
            if action.artifact_name in shots:
                raise HandlerError(
                    f"actions[{index}]: screenshot name {action.name!r} is used twice",
                    retryable=False,
                )
            shots.add(action.artifact_name)
        actions.append(action)
    return actions


class UrlPolicy(BaseModel):
    """Which URLs a browser worker may load.

    ``schemes``: allowed URL schemes (default http and https; ``about:``/``data:``/``blob:``
    pages the browser makes itself are always allowed). ``hosts``: None allows every host;
    otherwise a list of host names or glob patterns (``"*.example.com"``, ``"127.0.0.1"``).
    ``goto`` URLs are checked before the browser starts; with a host list set, every
    request the page makes (links, redirects, images, XHR) is checked too and blocked ones
    are aborted and listed in the step's result.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schemes: frozenset[str] = frozenset({"http", "https"})
    hosts: tuple[str, ...] | None = None

    @property
    def restricts_hosts(self) -> bool:
        return self.hosts is not None

    def why_blocked(self, url: str) -> str | None:
        """None if ``url`` may load, else the reason it may not."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in {"about", "data", "blob"}:
            return None
        if scheme not in self.schemes:
            allowed = ", ".join(sorted(self.schemes))
            shown = scheme or "(none)"
            return f"scheme {shown!r} is not allowed on this worker (allowed: {allowed})"
        host = (parts.hostname or "").lower()
        if self.hosts is not None and not any(
            fnmatch.fnmatchcase(host, p.lower()) for p in self.hosts
        ):
            return f"host {host!r} is not in this worker's allowed hosts ({', '.join(self.hosts)})"
        return None

    def check_actions(self, actions: list[Action]) -> None:
        for index, action in enumerate(actions):
            if isinstance(action, Goto):
                reason = self.why_blocked(action.url)
                if reason is not None:
                    raise HandlerError(
                        f"actions[{index}] ({action.describe()}): {reason}", retryable=False
                    )
