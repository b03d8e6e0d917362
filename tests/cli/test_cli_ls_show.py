"""`resultkit ls` and `resultkit show` on a local store."""

from __future__ import annotations

import json
from datetime import datetime

from .conftest import ALL_KEYS, flip_byte


def test_ls_json_lists_every_record_from_its_header(run, records):
    result = run("ls", str(records.root), "--json")
    assert result.code == 0, result.err
    rows = {row["key"]: row for row in result.json()}
    assert sorted(rows) == ALL_KEYS
    for key, row in rows.items():
        # size is the whole record on storage: what a user frees by deleting it
        assert row["size"] == (records.root / key).stat().st_size
    assert rows["pickle/expired"]["state"] == "expired"
    assert rows["json/live"]["state"] == "live"
    assert rows["pickle/one"]["state"] == "no-expiry"
    assert rows["pickle/one"]["expiration"] is None
    assert rows["json/live"]["serializer"] == "json"
    assert rows["pickle/one"]["serializer"] == "pickle"
    assert rows["literal/none"]["serializer"] == "literal"
    created = datetime.fromisoformat(rows["pickle/one"]["created"].replace("Z", "+00:00"))
    assert created == records.store.metadata("pickle/one").created  # the header's own timestamp
    # ls reads headers only: a flipped payload byte is verify's business, not ls's
    assert rows["bad/flipped"]["problem"] is None


def test_ls_filters_by_prefix_expired_and_age(run, records):
    by_prefix = run("ls", str(records.root), "--prefix", "pickle/", "--json")
    assert [r["key"] for r in by_prefix.json()] == ["pickle/expired", "pickle/old", "pickle/one"]
    expired = run("ls", str(records.root), "--expired", "--json")
    assert [r["key"] for r in expired.json()] == ["pickle/expired"]
    old = run("ls", str(records.root), "--older-than", "2d", "--json")
    assert [r["key"] for r in old.json()] == ["pickle/old"]
    assert run("ls", str(records.root), "--older-than", "4d", "--json").json() == []


def test_ls_table_for_people(run, records):
    result = run("ls", str(records.root))
    assert result.code == 0
    for key in ALL_KEYS:
        assert key in result.out
    assert "(expired)" in result.out
    assert "6 record(s)" in result.out


def test_ls_flags_a_record_whose_header_is_damaged(run, records):
    (records.root / "junk").write_bytes(b"not a record at all")
    flip_byte(records.root / "pickle" / "one", offset_from_end=60)  # inside the header line
    rows = {r["key"]: r for r in run("ls", str(records.root), "--json").json()}
    assert rows["junk"]["state"] == "unreadable"
    assert "header" in rows["junk"]["problem"]
    assert rows["pickle/one"]["state"] == "unreadable"
    assert rows["json/live"]["problem"] is None


def test_ls_bad_duration_is_a_usage_error(run, records):
    result = run("ls", str(records.root), "--older-than", "soon")
    assert result.code == 2
    assert result.err.startswith("resultkit: error: --older-than 'soon' is not a duration")
    assert result.err.count("\n") == 1


def test_ls_empty_storage(run, tmp_path):
    result = run("ls", str(tmp_path / "empty"))
    assert result.code == 0
    assert "no records" in result.out
    assert run("ls", str(tmp_path / "empty"), "--json").json() == []


def test_show_prints_the_header(run, records):
    result = run("show", str(records.root), "json/live", "--json")
    assert result.code == 0, result.err
    shown = result.json()
    assert shown["key"] == "json/live"
    assert shown["state"] == "live"
    assert shown["size"] == (records.root / "json" / "live").stat().st_size
    header = shown["header"]
    assert header["format"] == "resultkit-record"
    assert header["metadata"]["storage_key"] == "json/live"
    assert header["metadata"]["serializer"]["type"] == "json"
    assert header["metadata"]["payload_hash"].startswith("xxh3_128:")
    table = run("show", str(records.root), "literal/none")
    assert table.code == 0
    assert "literal" in table.out and "payload hash" in table.out


def test_show_shows_expired_records_too(run, records):
    shown = run("show", str(records.root), "pickle/expired", "--json").json()
    assert shown["state"] == "expired"


def test_show_missing_and_bad_keys(run, records):
    missing = run("show", str(records.root), "pickle/nope")
    assert missing.code == 1
    assert missing.err == (f"resultkit: error: no record at key 'pickle/nope' in {records.root}; "
                           "run `resultkit ls` to see the keys\n")
    bad = run("show", str(records.root), "../etc/passwd")
    assert bad.code == 2
    assert "'..'" in bad.err and bad.err.count("\n") == 1
    (records.root / "junk").write_bytes(b"garbage")
    junk = run("show", str(records.root), "junk")
    assert junk.code == 1 and "unreadable" in junk.err


def test_long_listings_are_plain_aligned_columns(run, records, monkeypatch):
    # Past PLAIN_TABLE_ROWS rows rich's layout is too slow (100,000 rows: minutes).
    monkeypatch.setattr("resultkit.cli._output.PLAIN_TABLE_ROWS", 3)
    result = run("ls", str(records.root))
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["key", "task", "size", "created", "expires", "serializer"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    body = lines[2:8]
    assert [line.split()[0] for line in body] == ALL_KEYS
    size_end = len(lines[0].split("size")[0]) + len("size")
    # sizes are right-aligned under their header
    assert all(line[size_end - 1] == "B" for line in body)
    assert "(expired)" in body[3]


def test_keys_that_look_like_markup_print_verbatim(run, records):
    # resultkit refuses such keys, but a file put there by hand is still listed
    records.store.write("runs-x", 1)
    (records.root / "runs[bold]" / "x[").mkdir(parents=True)
    (records.root / "runs-x").rename(records.root / "runs[bold]" / "x[" / "bold]")
    result = run("ls", str(records.root), "--prefix", "runs")
    assert result.code == 0
    assert "runs[bold]/x[/bold]" in result.out


def test_compressed_records_name_both_layers(run, tmp_path):
    from resultkit.results.store import ResultStore

    ResultStore(tmp_path / "z", serializer="compressed/json").write("k", {"a": [1] * 100})
    ResultStore(tmp_path / "z", serializer="compressed/pickle").write("p", {"a": [1] * 100})
    rows = run("ls", str(tmp_path / "z"), "--json").json()
    assert [(r["key"], r["serializer"]) for r in rows] == [("k", "compressed/json"),
                                                           ("p", "compressed/pickle")]
    assert run("verify", str(tmp_path / "z")).code == 0


def test_ls_names_the_task_that_wrote_each_record(run, tmp_path):
    from resultkit import task
    from resultkit.cache_policies import INPUTS

    @task(cache_policy=INPUTS, result_storage=str(tmp_path / "tasks"), name="double")
    def double(x: int) -> int:
        return 2 * x

    double(21)
    result = run("ls", str(tmp_path / "tasks"), "--json")
    assert result.code == 0
    [row] = json.loads(result.out)
    assert row["task"] == "double"
    table = run("ls", str(tmp_path / "tasks"))
    assert "double" in table.out
