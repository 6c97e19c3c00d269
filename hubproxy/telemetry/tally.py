"""Per-call metric values in plain objects on the event loop, handed to OpenTelemetry only
when /metrics is collected.

The OTel SDK's synchronous instruments look up the attribute set, take a lock and aggregate on
every `add` or `record`: about 5 µs each, some 35 µs a call with the metrics addon's seven. Here
a call adds to a `Cell` or records into a `Series` it already holds (the label sets of a
provider and model are resolved once, metrics.Labels): an int add, or a bisect and four
updates. No lock is needed: only the event loop writes, and the scrape, on the same loop, reads.

At collection a `Counter`'s cells are the observations of an OTel observable counter, and a
`Histogram`'s series are turned into the data points (HistogramDataPoint) the SDK's own
explicit-bucket aggregation would have produced, with the same bucket rule (a value equal to
a bound falls in that bound's bucket). OTel has no observable histogram, so
`prometheus.Reader` adds these points to each collection and the Prometheus exporter
translates them with the SDK's: names, units, labels and the text format stay the exporter's.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Mapping, Sequence

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics.export import AggregationTemporality, HistogramDataPoint, Metric
from opentelemetry.sdk.metrics.export import Histogram as HistogramData

Attrs = Mapping[str, str | int]


class Cell:
    """One attribute set's count."""

    __slots__ = ("attrs", "value")

    def __init__(self, attrs: Attrs) -> None:
        self.attrs = attrs
        self.value = 0


class Counter:
    """A monotonic count per attribute set: what one observable counter reports."""

    __slots__ = ("_cells",)

    def __init__(self) -> None:
        self._cells: dict[Hashable, Cell] = {}

    def cell(self, key: Hashable, attrs: Attrs) -> Cell:
        """The cell of `key` (whose labels are `attrs`), made on first use."""
        found = self._cells.get(key)
        if found is None:
            found = self._cells[key] = Cell(attrs)
        return found

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        """The observable counter's callback: each cell counted at least once."""
        return [Observation(c.value, c.attrs) for c in self._cells.values() if c.value]


class Series:
    """One attribute set's histogram: bucket counts, sum, min and max."""

    __slots__ = ("attrs", "bounds", "counts", "max", "min", "start_ns", "sum")

    def __init__(self, attrs: Attrs, bounds: Sequence[float]) -> None:
        self.attrs = attrs
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum: float = 0
        self.min = math.inf
        self.max = -math.inf
        self.start_ns = time.time_ns()

    def record(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def point(self, now_ns: int) -> HistogramDataPoint:
        """The cumulative point, as the SDK's explicit-bucket aggregation would give it."""
        return HistogramDataPoint(
            attributes=self.attrs,
            start_time_unix_nano=self.start_ns,
            time_unix_nano=now_ns,
            count=sum(self.counts),
            sum=self.sum,
            bucket_counts=tuple(self.counts),
            explicit_bounds=self.bounds,
            min=self.min,
            max=self.max,
        )


class Histogram:
    """An explicit-bucket histogram, a Series per attribute set, read as OTel points."""

    __slots__ = ("_series", "bounds", "description", "name", "unit")

    def __init__(self, name: str, *, unit: str, description: str, bounds: Sequence[float]) -> None:
        self.name, self.unit, self.description = name, unit, description
        self.bounds = tuple(bounds)
        self._series: dict[Hashable, Series] = {}

    def series(self, key: Hashable = None, attrs: Attrs | None = None) -> Series:
        """The series of `key` (whose labels are `attrs`), made on first use."""
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Series(attrs or {}, self.bounds)
        return found

    def metric(self, now_ns: int) -> Metric | None:
        """The cumulative OTel histogram of every series recorded into; None if none was."""
        points = [s.point(now_ns) for s in self._series.values() if any(s.counts)]
        if not points:
            return None
        data = HistogramData(points, AggregationTemporality.CUMULATIVE)
        return Metric(self.name, self.description, self.unit, data)
