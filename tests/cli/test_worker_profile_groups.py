"""``worldpool worker --profile`` takes a profile as the seed writes it, prints its
hardware groups with ``--print-profile``, and warns about group claims it cannot back."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from worldpool.cli.app import Exit, app
from worldpool.models import BrowserAutomation, Hardware, Virtualization
from worldpool.worker.hardware_groups import group_problems

SEED_FILE = Path(__file__).parents[1] / "sim" / "data" / "seed_profiles.json"


def test_a_seed_profile_file_prints_with_its_groups(tmp_path: Path) -> None:
    sandbox = json.loads(SEED_FILE.read_text())["workers"][2]
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(sandbox))
    result = CliRunner().invoke(
        app,
        ["worker", "--profile", str(path), "--print-profile"],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == Exit.OK, result.output
    out = result.output
    profile = orjson.loads(out[out.index("{") : out.rindex("}") + 1])
    assert profile["id"] == "sandbox-onprem-01"
    assert profile["location"]["region"] == "on-prem"
    assert profile["hardware"]["virtualization"] == {
        "platform": "firecracker",
        "concurrent_vms": 32,
        "boot_time_ms": 125,
        "snapshot_support": True,
    }
    assert profile["hardware"]["isolation"]["resource_limits"]["max_vcpu"] == 2
    assert set(profile["capabilities"]) == {"shell_operations", "testing", "file_operations"}


def test_group_claims_the_machine_cannot_back_are_named() -> None:
    bare = Hardware(tools=[])
    claimed = Hardware(
        browser_automation=BrowserAutomation(vnc_port=5900, headless=False),
        virtualization=Virtualization(platform="bubblewrap"),
    )
    problems = "\n".join(group_problems(claimed, bare))
    assert "no Chromium was found" in problems and "'chromium'" in problems
    assert "'xvfb' and 'x11vnc'" in problems
    assert "'bubblewrap'" in problems
    everything = Hardware(tools=["chromium", "xvfb", "x11vnc", "bwrap"])
    assert group_problems(claimed, everything) == []
