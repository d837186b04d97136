"""The seed's hardware groups, as far as this machine can tell, and the group claims it
cannot back.

Detected: ``browser_automation`` when Chromium is installed (Playwright, headless unless
Xvfb and x11vnc can serve a live view; recording: traces and HAR are always kept),
``virtualization`` and ``isolation`` when bubblewrap is (namespaces: network and
filesystem isolation), ``code_analysis`` when jedi is importable. What a machine cannot
tell (bandwidth, captcha solving, a remote VM host's capacity) comes from the profile.
``llm_inference`` and ``vision_models`` come from served-model detection, not from here.
"""

from __future__ import annotations

import importlib.util

from worldpool.models import BrowserAutomation, CodeAnalysis, Hardware, Isolation, Virtualization


def detect_groups(tools: list[str], cpus: int) -> dict[str, object]:
    """Hardware fields for the groups this machine shows (``Hardware`` keyword arguments)."""
    found: dict[str, object] = {}
    if "chromium" in tools:
        live_view = "xvfb" in tools and "x11vnc" in tools
        found["browser_automation"] = BrowserAutomation(
            tool="playwright" if importlib.util.find_spec("playwright") else "chromium",
            headless=not live_view,
            recording=True,
            concurrent_sessions=max(1, cpus // 2),
        )
    if "bwrap" in tools:
        found["virtualization"] = Virtualization(platform="bubblewrap", concurrent_vms=cpus)
        found["isolation"] = Isolation(network_isolation=True, filesystem_isolation=True)
    if importlib.util.find_spec("jedi") is not None:
        found["code_analysis"] = CodeAnalysis(tool="jedi", language_support=["python"])
    return found


def group_problems(claimed: Hardware, detected: Hardware) -> list[str]:
    """Group claims this machine cannot back, one sentence each."""
    problems: list[str] = []
    browser = claimed.browser_automation
    if browser is not None:
        if "chromium" not in detected.tools:
            problems.append(
                "claims browser_automation but no Chromium was found: install the Debian "
                "package 'chromium'"
            )
        if (browser.vnc_port is not None or not browser.headless) and not {
            "xvfb",
            "x11vnc",
        } <= set(detected.tools):
            problems.append(
                "claims a live browser view (browser_automation.vnc_port / headless=false) "
                "but Xvfb or x11vnc is missing: install the Debian packages 'xvfb' and 'x11vnc'"
            )
    virt = claimed.virtualization
    if virt is not None and virt.platform == "bubblewrap" and "bwrap" not in detected.tools:
        problems.append(
            "claims virtualization.platform bubblewrap but bwrap was not found: install the "
            "Debian package 'bubblewrap'"
        )
    code = claimed.code_analysis
    if code is not None and code.tool == "jedi" and importlib.util.find_spec("jedi") is None:
        problems.append("claims code_analysis with jedi but it is not installed: pip install jedi")
    return problems
