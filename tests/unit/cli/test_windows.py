"""`handsoff windows SPEC [--at ISO-TIME] [--next N]`: window states and openings, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

from handsoff.cli import main
from support.repos import EXAMPLES_SPECS

CONFIG = str(EXAMPLES_SPECS / "greeter-config.json")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_example_on_thanksgiving(capsys):
    code, out, err = run(capsys, "windows", CONFIG, "--at", "2026-11-26T12:00:00-08:00", "--next", "3")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "greeter-config: 1 window(s); schedule: business-hours; execution: superseded",
        "business-hours: mon-thu 09:00-16:00 America/Los_Angeles, holidays US-CA, 1 freeze, min 30m",
        "  used by: schedule, prod.onebox, prod.first-region, prod.rest",
        "  at Thu 2026-11-26 12:00 PST: closed (Thanksgiving Day) until 2026-11-30 09:00 PST",
        "  next 3 opening(s):",
        "    Mon 2026-11-30 09:00 PST – 16:00 PST  (7h)",
        "    Tue 2026-12-01 09:00 PST – 16:00 PST  (7h)",
        "    Wed 2026-12-02 09:00 PST – 16:00 PST  (7h)",
    ]


def test_a_time_without_offset_is_read_in_the_windows_zone(capsys):
    code, out, _ = run(capsys, "windows", CONFIG, "--at", "2026-12-17T15:45", "--next", "2")

    assert code == 0
    assert out.splitlines()[3:] == [
        "  at Thu 2026-12-17 15:45 PST: open until 2026-12-17 16:00 PST (less than 30m left)",
        "  next 2 opening(s):",
        "    Thu 2026-12-17 15:45 PST – 16:00 PST  (15m)",
        "    Tue 2027-01-05 09:00 PST – 16:00 PST  (7h)",  # after the year-end freeze
    ]


def test_a_window_open_across_days(capsys, tmp_path: Path):
    spec = json.loads((EXAMPLES_SPECS / "greeter-app.json").read_text())
    spec["windows"] = {
        "weekend": {"timezone": "UTC", "allow": [{"days": ["sat"], "start": "20:00", "end": "08:00"}]}
    }
    spec["stages"][0]["window"] = "weekend"
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "service.json").write_text(
        (EXAMPLES_SPECS / "templates" / "service.json").read_text()
    )
    (tmp_path / "app.json").write_text(json.dumps(spec))

    code, out, _ = run(
        capsys, "windows", str(tmp_path / "app.json"), "--at", "2026-11-26T00:00Z", "--next", "1"
    )

    assert code == 0
    assert out.splitlines()[2:] == [
        "  used by: alpha.alpha",
        "  at Thu 2026-11-26 00:00 UTC: closed until 2026-11-28 20:00 UTC",
        "  next 1 opening(s):",
        "    Sat 2026-11-28 20:00 UTC – Sun 2026-11-29 08:00 UTC  (12h)",
    ]


def test_a_spec_without_windows(capsys):
    code, out, _ = run(capsys, "windows", str(EXAMPLES_SPECS / "greeter-app.json"))

    assert (code, out) == (
        0,
        "greeter-app: 0 window(s); schedule: none (triggered runs only); execution: superseded\n",
    )


def test_errors(capsys, tmp_path: Path):
    broken = json.loads(Path(CONFIG).read_text())
    broken["windows"]["business-hours"]["timezone"] = "America/Los_Angles"
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "service.json").write_text(
        (EXAMPLES_SPECS / "templates" / "service.json").read_text()
    )
    (tmp_path / "broken.json").write_text(json.dumps(broken))

    assert run(capsys, "windows", str(tmp_path / "broken.json")) == (
        1,
        f"{tmp_path / 'broken.json'}: $.windows.business-hours.timezone: unknown zone 'America/Los_Angles'\n",
        "",
    )
    assert run(capsys, "windows", CONFIG, "--at", "tomorrow") == (
        2,
        "",
        "handsoff windows: error: --at 'tomorrow' is not an ISO time like 2026-11-26T12:00:00-08:00\n",
    )
    assert run(capsys, "windows", str(tmp_path / "nope.json"))[::2] == (
        2,
        f"handsoff windows: error: no such file: {tmp_path / 'nope.json'}\n",
    )
    assert run(capsys, "windows", CONFIG, "--next", "-1")[0] == 2
