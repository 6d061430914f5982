"""ChunkedLog: the large tables kept by column, or streamed to a Parquet file."""

from __future__ import annotations

import pandas as pd
import pytest

from testbed.sim import record_log
from testbed.sim.network import FlowRecord
from testbed.sim.record_log import ChunkedLog


def _records(n):
    return [FlowRecord(i, "a", f"d{i % 3}", "inference", f"t{i}", float(8 * i), 2, 0.5 * i,
                       0.5 * i + 0.25, 0.5 * i + 0.5, 0.0) for i in range(n)]


@pytest.mark.parametrize("n", [0, 9, 10, 37])
def test_reads_like_the_list_of_its_records(monkeypatch, n):
    monkeypatch.setattr(record_log, "CHUNK", 10)
    log, records = ChunkedLog(FlowRecord), _records(n)
    log.extend(records)
    assert len(log) == n and list(log) == records and bool(log) == bool(n)
    if n:
        assert log[-1] == records[-1] and log[n // 2] == records[n // 2]
    expected = pd.DataFrame.from_records(records, columns=FlowRecord._fields) if n else None
    frame = log.frame()
    assert list(frame.columns) == list(FlowRecord._fields) and len(frame) == n
    if n:
        assert frame.to_csv(index=False) == expected.to_csv(index=False)
        assert frame.size_bytes.dtype == float and frame.flow_id.dtype == "int64"
    with pytest.raises(IndexError):
        log[n]


def test_a_sink_streams_chunks_to_parquet_and_keeps_the_last(monkeypatch, tmp_path):
    monkeypatch.setattr(record_log, "CHUNK", 10)
    path = tmp_path / "flows.parquet"
    log, records = ChunkedLog(FlowRecord, sink=path, constants={"partitioner": "p"}), \
        _records(25)
    log.extend(records)
    assert len(log) == 25 and log[-1] == records[-1] and log[19] == records[19]
    assert path.exists() and len(log._buffer) == 5      # two chunks written already
    with pytest.raises(TypeError):
        log.frame()
    assert log.close() == path
    back = pd.read_parquet(path)
    assert list(back.columns) == ["partitioner"] + list(FlowRecord._fields)
    assert set(back.partitioner) == {"p"} and back.flow_id.tolist() == list(range(25))
    assert back.end_s.tolist() == [r.end_s for r in records]
    assert ChunkedLog(FlowRecord, sink=tmp_path / "none.parquet").close() is None
