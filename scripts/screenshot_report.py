#!/usr/bin/env python3
"""Screenshot a study report (or any local HTML file) with headless Chromium.

    python scripts/screenshot_report.py runs/study/report.html report.png [--width 1400 --height 2000]

Needs Debian's `chromium` package (scripts/install_system.sh installs it). The browser runs with a
fresh throw-away profile, no network features, no GPU and no sandbox (it is usually run as root in
containers, where Chromium's sandbox cannot start). Exit status 0 when the PNG was written.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 2000, timeout: float = 120.0,
               browser: str | None = None) -> Path:
    """Render `html` to `png` at width x height; raises RuntimeError when Chromium fails."""
    browser = browser or find_chromium()
    if browser is None:
        raise RuntimeError(f"no Chromium found (tried {', '.join(CANDIDATES)}); apt-get install chromium")
    html, png = Path(html).resolve(), Path(png).resolve()
    if not html.is_file():
        raise RuntimeError(f"{html} does not exist")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="mdrl-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
                   f"--window-size={width},{height}", html.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"Chromium did not finish within {timeout:.0f}s") from None
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report.html to render")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")
    args = parser.parse_args(argv)
    try:
        path = screenshot(args.html, args.png, args.width, args.height, args.timeout)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
