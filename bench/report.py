"""The printed report: the results table, and each goal as the ratio it is stated in, met or not."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from bench.measure import Result
from bench.plan import Figure, Goal


def table(results: Sequence[Result]) -> str:
    head = ("scenario", "target", "requests", "RPS", "p50 ms", "p99 ms", "errors",
            "RPS spread", "CPU µs/req")  # fmt: skip
    rows = [
        (r.scenario, r.target, str(r.requests), f"{r.rps:,.0f}", _ms(r.percentile(0.50)),
         _ms(r.percentile(0.99)), str(r.errors), _pct(r.spread),
         "-" if math.isnan(r.cpu_us) else f"{r.cpu_us:.0f}")
        for r in results
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    lines = []
    for n, row in enumerate((head, *rows)):
        if n > 1 and row[0] != rows[n - 2][0]:
            lines.append("")  # a blank line between scenarios
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def goals(results: Iterable[Result], wanted: Iterable[Goal]) -> tuple[str, int]:
    """The goal lines, and how many goals were missed. Goals of scenarios not run are skipped."""
    by = {(r.scenario, r.target): r for r in results}
    lines, missed = [], 0
    for goal in wanted:
        t, b = by.get((goal.scenario, goal.target)), by.get((goal.scenario, goal.baseline))
        ref = by.get((goal.scenario, goal.reference))
        if t is None or b is None or (goal.kind == "added_latency" and ref is None):
            continue
        if goal.kind == "throughput":
            value = t.rps / b.rps if b.rps else math.nan
            ok = value >= goal.limit
            text = (
                f"throughput {goal.target}/{goal.baseline} [{goal.scenario}]: {t.rps:,.0f} / "
                f"{b.rps:,.0f} = {_shown(value, goal.limit)}  (target >= {goal.limit})"
            )
        elif goal.kind == "chunk_cost":
            cpu_t, cpu_b = _per_chunk(t.cpu_us, t.chunks), _per_chunk(b.cpu_us, b.chunks)
            value = _ratio(cpu_t, cpu_b)
            ok = value <= goal.limit
            p50_t = 1000 * _per_chunk(t.percentile(0.5), t.chunks)
            p50_b = 1000 * _per_chunk(b.percentile(0.5), b.chunks)
            text = (
                f"CPU per chunk {goal.target}/{goal.baseline} [{goal.scenario}]: "
                f"{cpu_t:.1f} / {cpu_b:.1f} µs = {_shown(value, goal.limit)}  "
                f"(target <= {goal.limit}); "
                f"p50 per chunk {p50_t:.0f} / {p50_b:.0f} µs = {_ratio(p50_t, p50_b):.2f}"
            )
        else:
            assert ref is not None
            p50_ref = ref.percentile(0.5)
            added_t, added_b = t.percentile(0.5) - p50_ref, b.percentile(0.5) - p50_ref
            value = added_t / added_b if added_b > 0 else math.nan
            ok = value <= goal.limit
            text = (
                f"added p50 latency over {goal.reference} [{goal.scenario}]: "
                f"{goal.target} +{added_t:.3f} ms, {goal.baseline} +{added_b:.3f} ms, "
                f"ratio {_shown(value, goal.limit)}  (target <= {goal.limit})"
            )
        if any(r.errors or r.warmup_errors for r in (t, b, ref) if r) or math.isnan(value):
            ok = False
        missed += not ok
        lines.append(f"  {'met   ' if ok else 'MISSED'}  {text}")
    return "\n".join(lines), missed


def figures(results: Iterable[Result], wanted: Iterable[Figure]) -> str:
    """A line per figure whose two targets ran: the throughput and CPU per request ratios."""
    by = {(r.scenario, r.target): r for r in results}
    lines = []
    for f in wanted:
        t, b = by.get((f.scenario, f.target)), by.get((f.scenario, f.baseline))
        if t is None or b is None:
            continue
        lines.append(
            f"  {f.target}/{f.baseline} [{f.scenario}]: throughput {t.rps:,.0f} / {b.rps:,.0f}"
            f" = {_ratio(t.rps, b.rps):.2f}; CPU {t.cpu_us:.0f} / {b.cpu_us:.0f} µs/req"
            f" = {_ratio(t.cpu_us, b.cpu_us):.2f} ({t.cpu_us - b.cpu_us:+.0f} µs)"
        )
    return "\n".join(lines)


def failures(results: Iterable[Result]) -> str:
    """Every target with errors and its commonest error messages (measured and warm-up alike);
    empty if there were none."""
    lines = []
    for r in results:
        if r.errors or r.warmup_errors:
            lines.append(
                f"  {r.scenario} / {r.target}: {r.errors} of {r.requests} failed"
                f" (and {r.warmup_errors} in warm-up)"
            )
            lines += [f"      {n} x {msg}" for msg, n in r.error_samples.most_common(5)]
    return "\n".join(lines)


def _shown(value: float, limit: float) -> str:
    """A ratio to two decimals, or three where two would round it onto its limit."""
    return f"{value:.3f}" if f"{value:.2f}" == f"{limit:.2f}" else f"{value:.2f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _per_chunk(value: float, chunks: int) -> float:
    """A per-answer figure divided by the chunks of the answer; NaN if not streamed."""
    return value / chunks if chunks > 0 else math.nan


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.0f}%"
