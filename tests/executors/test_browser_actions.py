"""Action-list validation and URL policy: all of it happens before a browser starts."""

from __future__ import annotations

import pytest

from worldpool.errors import HandlerError
from worldpool.executors.browser_actions import Goto, Screenshot, UrlPolicy, WaitFor, parse_actions


def test_valid_list_parses_into_typed_actions() -> None:
    actions = parse_actions(
        [
            {"action": "goto", "url": "http://x.test/"},
            {"action": "wait_for", "text": "Hi", "timeout_ms": 500},
            {"action": "screenshot", "name": "home"},
        ]
    )
    assert isinstance(actions[0], Goto)
    assert isinstance(actions[1], WaitFor) and actions[1].timeout_ms == 500
    assert isinstance(actions[2], Screenshot) and actions[2].artifact_name == "home.png"


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (
            [{"action": "goto", "url": "http://x/"}, {"action": "hover", "selector": "a"}],
            "actions[1]: unknown action 'hover'",
        ),
        ([{"url": "http://x/"}], "actions[0]: must be an object with an 'action' field"),
        ([{"action": "click"}], "actions[0] (click): selector: Field required"),
        ([{"action": "click", "selector": "a", "force": True}], "force: Extra inputs"),
        ([{"action": "wait_for"}], "exactly one of 'selector' or 'text'"),
        ([{"action": "wait_for", "selector": "a", "text": "b"}], "exactly one"),
        ([{"action": "screenshot", "name": "../etc/passwd"}], "must be a plain file name"),
        (
            [{"action": "screenshot", "name": "a"}, {"action": "screenshot", "name": "a.png"}],
            "actions[1]: screenshot name 'a.png' is used twice",
        ),
        ([], "non-empty list"),
        ("goto", "non-empty list"),
    ],
)
def test_bad_lists_name_the_index_and_reason(actions: object, expected: str) -> None:
    with pytest.raises(HandlerError) as info:
        parse_actions(actions)
    assert expected in str(info.value)
    assert info.value.retryable is False


def test_default_policy_allows_http_and_https_anywhere_but_not_file() -> None:
    policy = UrlPolicy()
    assert policy.why_blocked("https://example.com/x") is None
    assert policy.why_blocked("http://10.0.0.1:8080/") is None
    assert policy.why_blocked("about:blank") is None
    assert "scheme 'file'" in str(policy.why_blocked("file:///etc/passwd"))


def test_host_list_accepts_globs_and_rejects_others() -> None:
    policy = UrlPolicy(hosts=("*.example.com", "127.0.0.1"))
    assert policy.why_blocked("https://app.example.com/") is None
    assert policy.why_blocked("http://127.0.0.1:9/") is None
    assert "host 'evil.test'" in str(policy.why_blocked("https://evil.test/"))
    with pytest.raises(HandlerError, match=r"actions\[1\] \(goto 'https://evil.test/'\): host"):
        policy.check_actions(
            parse_actions(
                [
                    {"action": "goto", "url": "https://app.example.com/"},
                    {"action": "goto", "url": "https://evil.test/"},
                ]
            )
        )
