"""`make bench`: start the services, run every scenario against every target, print the report.

Exit status: 0 when every request succeeded, 1 when any failed (or a child misbehaved), and
with --strict also 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import FrameType

from bench import billing, otlp, plan, report, stack
from bench.hotspots import summary
from bench.measure import Result, Sizes, scenario_results
from bench.procs import ChildError
from bench.profile import sampling


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="--scale 0.3: a run of ~45 s")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every request count")
    p.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in plan.SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    p.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: the billed hubproxy on SQLite against one and three instances on a "
        "PostgreSQL cluster the bench starts (issue #12)",
    )
    p.add_argument("--chunks", type=int, default=20, help="chunks per streamed answer")
    p.add_argument("--upstream-delay-ms", type=float, default=0.0, help="pause between chunks")
    p.add_argument("--profile", type=Path, metavar="DIR", help="py-spy hubproxy's runs into DIR")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    scenarios = [
        s
        for s in plan.SCENARIOS
        if s.backend == args.backend and (not args.scenario or s.name in args.scenario)
    ]
    sizes = Sizes(scale=0.3 if args.quick else args.scale, chunks=max(args.chunks, 2))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        print("profiling hubproxy with py-spy: its numbers are perturbed by the sampling")
    results: list[Result] = []
    problems: list[str] = []
    notes: list[str] = []
    started = time.monotonic()
    try:
        with stack.running(
            sizes.chunks, args.upstream_delay_ms, problems, args.backend
        ) as services:
            pids = ", ".join(f"{name} {c.pid}" for name, c in services.services.items())
            print(f"services up ({pids}); {len(scenarios)} scenarios", flush=True)
            for scenario in scenarios:
                _scenario(services, scenario, sizes, args.profile, results)
            notes += [
                _billed(services, s, results, sizes.chunks, problems) for s in billing.SERVICES
            ]
            notes.append(_exported(services, results, problems))
    except ChildError as exc:
        problems.insert(0, str(exc))
    print(f"\nhubproxy bench: {time.monotonic() - started:.0f} s, 2 cores shared by all processes")
    if results:
        print(report.table(results))
    goal_lines, missed = report.goals(results, plan.GOALS)
    if goal_lines:
        print("\ngoals:\n" + goal_lines)
    figure_lines = report.figures(results, plan.FIGURES)
    if figure_lines:
        print("\ncosts (reported, no goal):\n" + figure_lines)
    for note in filter(None, notes):
        print(note)
    broken = report.failures(results)
    if broken or problems:
        print("\n" + "!" * 72)
        print("BENCH FAILED: requests failed, a process died or a check failed, so these numbers")
        print("do not count.")
        if broken:
            print(broken)
        for problem in dict.fromkeys(problems):  # the same death can be reported twice
            print("  " + problem.replace("\n", "\n    "))
        print("!" * 72)
        return 1
    return 1 if args.strict and missed else 0


def _scenario(
    services: stack.Stack,
    scenario: plan.Scenario,
    sizes: Sizes,
    profile_dir: Path | None,
    results: list[Result],
) -> None:
    spy: AbstractContextManager[None] = nullcontext()
    profile = None
    if profile_dir is not None and "hubproxy" in scenario.targets:
        # Over the whole scenario: py-spy takes no samples while hubproxy idles.
        profile = profile_dir / (re.sub(r"\W+", "-", scenario.name) + ".txt")
        spy = sampling(services.services[plan.target("hubproxy").service].pid, profile)
    with spy:
        scenario_results(services, scenario, sizes, _progress, results)
    if profile is not None and profile.exists():
        print(summary(profile, top=15), flush=True)


def _billed(
    services: stack.Stack, service: str, results: list[Result], chunks: int, problems: list[str]
) -> str:
    """Whether a billed hubproxy debited what it served (a problem if not); "" if it was not
    measured in this run."""
    sent = sum(r.sent for r in results if plan.target(r.target).service == service)
    if not sent:
        return ""
    try:
        line, problem = billing.check(services.configs[service], sent, chunks, service)
    except RuntimeError as exc:
        line, problem = "", f"the billing check of {service} failed: {exc}"
    if problem:
        problems.append(problem)
    return "  " + line if line else ""


def _exported(services: stack.Stack, results: list[Result], problems: list[str]) -> str:
    """Whether the OTLP receiver got the spans of every request hubproxy-otlp served (a
    problem if not); "" if it was not measured in this run."""
    sent = sum(r.sent for r in results if plan.target(r.target).service == "hubproxy-otlp")
    if not sent:
        return ""
    try:
        line, problem = otlp.check(services.services[otlp.SERVICE].url, sent)
    except OSError as exc:
        line, problem = "", f"the OTLP check failed: {exc}"
    if problem:
        problems.append(problem)
    return "  " + line if line else ""


def _progress(round_no: int, results: list[Result]) -> None:
    rates = "  ".join(f"{r.target} {r.round_rps[-1] if r.round_rps else 0:,.0f}" for r in results)
    errors = sum(r.errors + r.warmup_errors for r in results)
    print(
        f"  {results[0].scenario:<11} round {round_no}: {rates} rps"
        + (f"  ({errors} ERRORS so far)" if errors else ""),
        flush=True,
    )


def _stop(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the children


if __name__ == "__main__":
    sys.exit(main())
