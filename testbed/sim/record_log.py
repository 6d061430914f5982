"""A record table that holds its rows by column: the large tables of a run (flows, jobs).

A run of 25 devices and 1,000 tokens leaves over a million flow records; as named tuples
of Python floats they take about 300 bytes each. :class:`ChunkedLog` appends records to a
short list (as fast as a list) and every :data:`CHUNK` rows moves them into one NumPy
array per column (8 bytes per number, a shared reference per string), so the table takes
about a third of that. It reads like a list of the records (``len``, indexing, iteration
give named tuples) and turns into a DataFrame with :meth:`frame`. With a ``sink`` the
chunks go to a Parquet file instead, as they fill (the run's large tables streamed to
disk; ``constants`` add columns such as the partitioner); :meth:`close` writes the rest.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

T = TypeVar("T")
CHUNK = 16_384     # rows moved into columns (or to the sink) at a time

_DTYPES: dict[Any, Any] = {float: np.float64, int: None, bool: None, str: object}


class ChunkedLog(Generic[T]):
    """Records of the named-tuple type ``cls``, kept by column (see the module)."""

    def __init__(self, cls: type[T], *, sink: Path | None = None,
                 constants: dict[str, str] | None = None):
        self.cls = cls
        self.sink = sink
        self.constants = dict(constants or {})
        self._writer: Any = None
        self._last: T | None = None
        fields: tuple[str, ...] = cls._fields          # type: ignore[attr-defined]
        hints = typing.get_type_hints(cls)
        self.fields = fields
        # floats are stored as float64 (ints convert exactly); other numbers as NumPy
        # infers them (so an int field holding a float is never truncated); the rest as
        # Python objects (strings are shared, not copied)
        self._dtypes = [_DTYPES.get(hints.get(name), object) for name in fields]
        self._buffer: list[Any] = []
        self._chunks: list[list[np.ndarray]] = []
        self._chunked = 0

    # ------------------------------------------------------------------ writing
    def append(self, record: T) -> None:
        buffer = self._buffer
        buffer.append(record)
        if len(buffer) >= CHUNK:
            self._compact()

    def extend(self, records: Iterable[T]) -> None:
        for record in records:
            self.append(record)

    def _compact(self) -> None:
        if not self._buffer:
            return
        columns = list(zip(*self._buffer))
        arrays = [np.array(values, dtype=dtype) for values, dtype in zip(columns, self._dtypes)]
        self._chunked += len(self._buffer)
        self._last = self._buffer[-1]
        self._buffer = []
        if self.sink is None:
            self._chunks.append(arrays)
        else:
            self._write(arrays)

    def _write(self, arrays: list[np.ndarray]) -> None:
        """Append one chunk to the sink's Parquet file (constants as leading columns)."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        n = len(arrays[0])
        names = list(self.constants) + list(self.fields)
        columns = [pa.array([value] * n, pa.string()) for value in self.constants.values()]
        columns += [pa.array(a if a.dtype != object else a.tolist()) for a in arrays]
        batch = pa.RecordBatch.from_arrays(columns, names=names)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.sink, batch.schema)
        self._writer.write_batch(batch.cast(self._writer.schema))

    def close(self) -> Path | None:
        """Write what is left to the sink and close it; its path (None: nothing written,
        or no sink)."""
        if self.sink is None:
            return None
        self._compact()
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        return self.sink

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return self._chunked + len(self._buffer)

    def __bool__(self) -> bool:
        return len(self) > 0

    def _row(self, chunk: list[np.ndarray], i: int) -> T:
        return self.cls(*(column[i].item() if column.dtype != object else column[i]
                          for column in chunk))

    def __getitem__(self, index: int) -> T:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("record index out of range")
        if index >= self._chunked:
            return self._buffer[index - self._chunked]
        if self.sink is not None:    # written out: only the last record is at hand
            if index == self._chunked - 1 and self._last is not None:
                return self._last
            raise IndexError("records written to the sink are read from its file")
        chunk_index, i = divmod(index, CHUNK)
        return self._row(self._chunks[chunk_index], i)

    def __iter__(self) -> Iterator[T]:
        if self.sink is not None and self._chunked:
            raise TypeError(f"records written to {self.sink} are read from that file")
        for chunk in self._chunks:
            for i in range(len(chunk[0])):
                yield self._row(chunk, i)
        yield from self._buffer

    def frame(self) -> pd.DataFrame:
        """Every record as a row (the dtypes a list of the records would give)."""
        if self.sink is not None and (self._chunked or self._writer is not None):
            raise TypeError(f"records written to {self.sink} are read from that file")
        data = {}
        for k, (name, dtype) in enumerate(zip(self.fields, self._dtypes)):
            parts = [chunk[k] for chunk in self._chunks]
            if self._buffer:
                parts.append(np.array([record[k] for record in self._buffer], dtype=dtype))
            column = np.concatenate(parts) if parts else np.array([], dtype=dtype)
            data[name] = column
        return pd.DataFrame(data, columns=list(self.fields))
