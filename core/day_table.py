"""An in-process columnar copy of a per-day aggregate table, for the API's period views.

Every period view sums a few hundred to a few thousand rows of `daily_aggregates` or
`daily_facets`. Through SQL each of those sums cost about a millisecond of statement
building, driver work and row conversion, several per view, so a view nobody had asked for
yet took 5-20 ms to build and a freshly started API fell behind under load. Here the rows live
in numpy columns sorted by day: a period is a slice, a filter a lookup table over a key's
codes, a group-by a `np.bincount` per summed column (after `np.unique` only when the keys
could form many more groups than there are rows).

The copy follows the database through the aggregates version and the day ranges its
rebuilds logged (`core.versions.ChangeLog`): after a rebuild only the touched days are
read again. A table over `max_rows` is not copied (callers then query the database).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Integer, String, func, select, type_coerce
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from core.versions import ChangeLog

log = logging.getLogger(__name__)

# Group-bys over at most this many possible groups count them in place, without sorting.
_DENSE_GROUPS = 1 << 16
_DENSE_PER_ROW = 4  # ... or at most this many per summed row
_CHUNK = 50_000  # rows converted at a time while reading
Filter = Mapping[str, object]  # column -> one value, or a list/tuple/set of accepted values


@dataclass(frozen=True)
class _Block:
    """Rows sorted by day: day ordinals, one code array per key column, the summed values."""

    days: np.ndarray  # int32 day ordinals, ascending
    keys: dict[str, np.ndarray]  # key column -> int32 codes (see DayTable._names)
    values: np.ndarray  # float64, one column per summed column

    def __len__(self) -> int:
        return len(self.days)

    def between(self, first: int, last: int) -> _Block:
        """The rows of days first..last (views, no copy)."""
        # Searched as int32 like the column: a Python int would cast the whole column to
        # int64 first (measured 77 against 2 us per search on 214k rows).
        lo = int(self.days.searchsorted(np.int32(first), "left"))
        hi = int(self.days.searchsorted(np.int32(last), "right"))
        return self.take(slice(lo, hi))

    def take(self, rows: slice | np.ndarray) -> _Block:
        keys = {k: v[rows] for k, v in self.keys.items()}
        return _Block(self.days[rows], keys, self.values[rows])

    @staticmethod
    def join(blocks: Sequence[_Block]) -> _Block:
        """One block of these (the first one itself when it is the only non-empty one)."""
        full = [b for b in blocks if len(b)] or list(blocks[:1])
        if len(full) == 1:
            return full[0]
        keys = {k: np.concatenate([b.keys[k] for b in full]) for k in full[0].keys}
        return _Block(
            np.concatenate([b.days for b in full]),
            keys,
            np.concatenate([b.values for b in full]),
        )

    def by_day(self) -> _Block:
        return self.take(np.argsort(self.days, kind="stable"))


@dataclass(frozen=True)
class _Snapshot:
    """The copy, in two blocks: every row of `recent` is of a later day than those of `base`.
    A rebuild of recent days (what every job run does) replaces only `recent`: copying the
    large block on each run fragmented the heap (measured: +48 MB RSS over 15 runs)."""

    base: _Block
    recent: _Block

    def __len__(self) -> int:
        return len(self.base) + len(self.recent)


class _DayNames:
    """date.fromordinal, kept: the days a group-by returns come back as the same objects."""

    def __init__(self) -> None:
        self._days: dict[int, date] = {}

    def __getitem__(self, ordinal: int) -> date:
        day = self._days.get(ordinal)
        if day is None:
            day = self._days[ordinal] = date.fromordinal(ordinal)
        return day


def _ordinal(day: object) -> int:
    return (day if isinstance(day, date) else date.fromisoformat(str(day)[:10])).toordinal()


def _many(value: object) -> Collection[object]:
    return value if isinstance(value, list | tuple | set | frozenset) else (value,)


class DayTable:
    """Rows of `model` (a table with a `day` column) as numpy columns, refreshed by day range.

    `sums(...)` answers what `SELECT by..., SUM(c)... WHERE day BETWEEN .. GROUP BY by...`
    would, for equality / membership filters on the key columns."""

    def __init__(
        self, model: Any, keys: Sequence[str], values: Sequence[str], max_rows: int
    ) -> None:
        self.model = model
        self.key_columns = tuple(keys)
        self.value_columns = tuple(values)
        self.max_rows = max_rows
        # Counts come back as ints, like SQL's SUM of an integer column (summed as floats).
        self._integer = {c for c in values if isinstance(getattr(model, c).type, Integer)}
        self._codes: dict[str, dict[object, int]] = {k: {} for k in keys}
        self._names: dict[str, list[object]] = {k: [] for k in keys}
        self._days = _DayNames()
        self._snap: _Snapshot | None = None
        # (snapshot, (column, filter) -> values): what `distinct` answered for that snapshot.
        self._distinct: tuple[_Snapshot, dict[tuple[Any, ...], list[Any]]] | None = None
        self._seen = -1  # the aggregates version the copy holds (-1: none yet)
        self._too_big = max_rows <= 0
        self._lock = threading.Lock()

    # --- keeping up with the database -----------------------------------------------------
    def sync(self, session: Session, current: int, changes: ChangeLog) -> bool:
        """Bring the copy up to aggregates version `current` (what `session` reads; `changes`
        refreshed to it), reading again only the days rebuilt since. False when the table is
        not copied (over max_rows, or turned off)."""
        if self._too_big:
            return False
        # A reader whose snapshot predates the copy's version gets the newer copy (reloading
        # for it would step back, and under PostgreSQL's read-committed, readers alternate).
        if current <= self._seen:
            return True
        with self._lock:
            if self._too_big:
                return False
            if current <= self._seen:
                return True
            if self._snap is None:  # first use
                span: tuple[date, date] | None = None
            else:
                touched = changes.touched_after(self._seen)
                if touched is None:  # nothing rebuilt in between
                    self._seen = current
                    return True
                span = None if touched == (date.min, date.max) else touched
            if span is None and self._count(session) > self.max_rows:
                return self._give_up()
            self._reload(session, span)
            if self._snap is not None and len(self._snap) > self.max_rows:
                return self._give_up()
            self._seen = current
            return True

    def _give_up(self) -> bool:
        log.info(
            "%s has over %d rows: period views read it from the database",
            self.model.__tablename__,
            self.max_rows,
        )
        self._snap, self._too_big = None, True
        return False

    def _count(self, session: Session) -> int:
        return int(session.execute(select(func.count()).select_from(self.model)).scalar_one())

    def _reload(self, session: Session, span: tuple[date, date] | None) -> None:
        """Replace the rows of `span`'s days (every row when None) by the database's."""
        table = self.model.__table__
        # The day as stored (SQLite: text; no per-row date parsing), decoded once per day.
        stmt = select(
            type_coerce(table.c.day, String),
            *(table.c[k] for k in self.key_columns),
            *(table.c[c] for c in self.value_columns),
        ).execution_options(yield_per=_CHUNK)  # bounded memory while reading a large table
        if span is not None:
            stmt = stmt.where(table.c.day >= span[0], table.c.day <= span[1])
        result = session.connection().execute(stmt)
        read = _Block.join(
            [self._block(rows) for rows in result.partitions()] or [self._block([])]
        ).by_day()
        old = self._snap
        if old is None or span is None:
            snap = _Snapshot(read, read.take(slice(0, 0)))
        else:
            first, last = span[0].toordinal(), span[1].toordinal()
            cut = int(old.base.days.searchsorted(np.int32(first), "left"))
            later = _Block.join([old.base.take(slice(cut, None)), old.recent])
            kept = later.take((later.days < first) | (later.days > last))
            snap = _Snapshot(old.base.take(slice(0, cut)), _Block.join([kept, read]).by_day())
            if len(snap.recent) * 4 > len(snap):  # a rebuild of older days: one block again
                whole = _Block.join([snap.base, snap.recent])
                snap = _Snapshot(whole, whole.take(slice(0, 0)))
        # One assignment: readers hold either the old snapshot or the new one, never a mix.
        self._snap = snap

    def _block(self, rows: Sequence[Any]) -> _Block:
        """A block of rows (day, *keys, *values) as read, not yet sorted."""
        width = len(self.key_columns)
        columns = (
            list(zip(*rows, strict=True)) if rows else [()] * (1 + width + len(self.value_columns))
        )
        keys = {
            k: self._coded(columns[1 + i], lambda v, k=k: self._code(k, v))  # type: ignore[misc]
            for i, k in enumerate(self.key_columns)
        }
        values = np.nan_to_num(
            np.array(columns[1 + width :], dtype=np.float64)
            .reshape(len(self.value_columns), len(rows))
            .T
        )  # NULL sums read as 0, like the SQL path's `or 0`
        return _Block(self._coded(columns[0], _ordinal), keys, values)

    @staticmethod
    def _coded(column: Sequence[object], code: Callable[[object], int]) -> np.ndarray:
        """int32 codes of a column's values, computing each distinct value's code once."""
        codes = {v: code(v) for v in dict.fromkeys(column)}
        return np.fromiter(map(codes.__getitem__, column), dtype=np.int32, count=len(column))

    def _code(self, column: str, value: object) -> int:
        codes = self._codes[column]
        code = codes.get(value)
        if code is None:
            code = len(self._names[column])
            self._names[column].append(value)  # before the code is published (readers)
            codes[value] = code
        return code

    # --- reading --------------------------------------------------------------------------
    def sums(
        self,
        start: date,
        end: date,
        columns: Sequence[str],
        *,
        by: Sequence[str] = (),
        where: Filter | None = None,
        exclude: Filter | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows `(*by values, *sums of columns)` over days start..end, like the SQL group-by
        (no row for an empty group; without `by`, one row, of zeros when nothing matches).
        `by` may name "day" (a date) or key columns; `where` keeps rows whose column is the
        value (or one of the values), `exclude` drops them."""
        snap = self._snap
        if snap is None:
            raise RuntimeError("DayTable.sums before a successful sync")
        first, last = start.toordinal(), end.toordinal()
        rows = _Block.join([snap.base.between(first, last), snap.recent.between(first, last)])
        mask: np.ndarray | None = None
        for column, want in (where or {}).items():
            keep = self._member(column, rows.keys[column], want)
            mask = keep if mask is None else mask & keep
        for column, drop in (exclude or {}).items():
            keep = ~self._member(column, rows.keys[column], drop)
            mask = keep if mask is None else mask & keep
        picked = [self.value_columns.index(c) for c in columns]
        values = rows.values[:, picked] if mask is None else rows.values[mask][:, picked]
        if not by:
            totals = self._typed(columns, values.sum(axis=0, keepdims=True))
            return [tuple(col[0] for col in totals)]
        if not len(values):
            return []
        # One code per row and grouped column, combined into one int64 group number.
        parts = [(rows.days if c == "day" else rows.keys[c]) for c in by]
        if mask is not None:
            parts = [part[mask] for part in parts]
        combined = np.zeros(len(values), dtype=np.int64)
        bases = []
        for part in parts:
            low = int(part.min())
            size = int(part.max()) - low + 1
            combined = combined * size + (part - low)
            bases.append((low, size))
        space = int(np.prod([size for _, size in bases], dtype=np.int64))
        if space <= max(_DENSE_GROUPS, _DENSE_PER_ROW * len(combined)):
            # Few possible groups: count them in place (np.unique would sort the rows).
            groups = np.flatnonzero(np.bincount(combined, minlength=space))
            summed = np.stack(
                [np.bincount(combined, weights=col, minlength=space)[groups] for col in values.T],
                axis=1,
            )
        else:
            groups, inverse = np.unique(combined, return_inverse=True)
            summed = np.stack(
                [np.bincount(inverse, weights=col, minlength=len(groups)) for col in values.T],
                axis=1,
            )
        decoded: list[list[object]] = [[] for _ in by]
        rest = groups.copy()
        for i in range(len(by) - 1, -1, -1):
            low, size = bases[i]
            codes = (rest % size + low).tolist()
            rest //= size
            names = self._days if by[i] == "day" else self._names[by[i]]
            decoded[i] = list(map(names.__getitem__, codes))
        return list(zip(*decoded, *self._typed(columns, summed), strict=True))

    def distinct(self, column: str, *, where: Filter | None = None) -> list[Any]:
        """The values of key `column` over every day, in rows kept by `where` (like SQL's
        `SELECT DISTINCT`), sorted. Kept per snapshot: computed once per rebuild."""
        snap = self._snap
        if snap is None:
            raise RuntimeError("DayTable.distinct before a successful sync")
        filters = sorted((where or {}).items(), key=lambda kv: kv[0])
        key = (column, tuple((name, frozenset(_many(want))) for name, want in filters))
        kept = self._distinct
        if kept is not None and kept[0] is snap and key in kept[1]:
            return kept[1][key]
        codes = []
        for block in (snap.base, snap.recent):
            keep = np.ones(len(block), dtype=bool)  # every filter over the same rows
            for name, want in filters:
                keep &= self._member(name, block.keys[name], want)
            codes.append(np.unique(block.keys[column][keep]))
        names = self._names[column]
        found = sorted(names[c] for c in np.unique(np.concatenate(codes)).tolist())
        if kept is None or kept[0] is not snap:
            kept = (snap, {})
            self._distinct = kept
        kept[1][key] = found
        return found

    def _typed(self, columns: Sequence[str], summed: np.ndarray) -> list[list[Any]]:
        """The summed columns as lists: ints for integer columns (like SQL), else floats."""
        return [
            np.rint(col).astype(np.int64).tolist() if c in self._integer else col.tolist()
            for c, col in zip(columns, summed.T, strict=True)
        ]

    def _known(self, column: str, values: object) -> list[int]:
        codes = self._codes[column]
        return [codes[v] for v in _many(values) if v in codes]

    def _member(self, column: str, coded: np.ndarray, values: object) -> np.ndarray:
        """Whether each row's code of `column` is one of `values` (np.isin sorts; a lookup
        table over the column's codes, or one comparison, does not)."""
        known = self._known(column, values)
        if len(known) == 1:
            return coded == known[0]
        table = np.zeros(len(self._names[column]), dtype=bool)
        table[known] = True
        return table[coded]
