"""Summarising a raw py-spy profile: where the time goes, by package and by function.

`python -m bench.hotspots FILE [--top N]`. Each line of a raw profile is a stack of frames
`function (path:line)` joined by `;`, then a sample count. Self time is charged to the
innermost Python frame (with the C code it calls); inclusive time to every frame below the
event loop. Time the loop spends in its own C code (uvloop: polling, socket reads and writes,
scheduling callbacks) shows as self time of Runner.run.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::\d+)?\)$")
# Frames up to the event loop's own are the same in every sample: not counted as inclusive.
_LOOP = ("(asyncio/runners.py)", "(asyncio/base_events.py)", "(asyncio/events.py)")
# The packages the summary lists by function.
WATCH = ("hubproxy", "aiohttp", "structlog", "opentelemetry", "aiosqlite", "sqlite3", "yarl")


def short(path: str) -> str:
    """A site-packages, stdlib or working-tree path without its prefix."""
    for marker in ("/site-packages/", f"/python{sys.version_info[0]}.{sys.version_info[1]}/"):
        if marker in path:
            return path.rsplit(marker, 1)[1]
    cwd = str(Path.cwd()) + "/"
    return path.removeprefix(cwd)


def frame_key(frame: str) -> str:
    """`function (short path)`, the line number dropped."""
    m = _FRAME.match(frame)
    return frame if m is None else f"{m['func']} ({short(m['path'])})"


def package(key: str) -> str:
    path = key.rpartition(" (")[2].removesuffix(")")
    return path.split("/", 1)[0].removesuffix(".py") or "?"


def load(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, self samples by function, inclusive samples by function."""
    total = 0
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_key(f) for f in stack.split(";")]
        total += n
        self_time[frames[-1]] += n
        loop = max((i for i, f in enumerate(frames) if f.endswith(_LOOP)), default=-1)
        for func in set(frames[loop + 1 :]):
            inclusive[func] += n
    return total, self_time, inclusive


def summary(path: Path, top: int = 12) -> str:
    total, self_time, inclusive = load(path)
    if not total:
        return f"    {path}: no samples"

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    by_package: Counter[str] = Counter()
    for func, n in self_time.items():
        by_package[package(func)] += n
    packages = ", ".join(f"{p} {pct(n).strip()}" for p, n in by_package.most_common(9))
    lines = [f"    {path}: {total} samples", f"    self time by package: {packages}"]
    lines.append("    inclusive, in " + ", ".join(WATCH) + ":")
    watched = [(f, n) for f, n in inclusive.most_common() if package(f) in WATCH]
    lines += [f"      {pct(n)}  {f}" for f, n in watched[:top]]
    lines.append("    self (innermost Python frame, with the C it calls):")
    lines += [f"      {pct(n)}  {f}" for f, n in self_time.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__)
    parser.add_argument("profile", type=Path, help="a `py-spy record --format raw` output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summary(args.profile, args.top))


if __name__ == "__main__":
    main()
