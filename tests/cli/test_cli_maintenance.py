"""`resultkit rm`, `gc`, `verify` and `stats` on a local store."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from resultkit.results.store import ResultStore

from .conftest import ALL_KEYS, flip_byte


def _keys_on_disk(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith(".rk-"))


# -- rm -------------------------------------------------------------------------------


def test_rm_one_key_needs_no_confirmation(run, records):
    result = run("rm", str(records.root), "pickle/one")
    assert result.code == 0, result.err
    assert not (records.root / "pickle" / "one").exists()
    assert "deleted 1 record(s)" in result.out


def test_rm_several_refuses_without_yes_when_stdin_is_not_a_terminal(run, records):
    result = run("rm", str(records.root), "pickle/one", "pickle/old", stdin="y\n")
    assert result.code == 2
    assert result.err == (f"resultkit: error: refusing to delete 2 records from {records.root} "
                          "without confirmation (stdin is not a terminal); pass --yes\n")
    assert _keys_on_disk(records.root) == ALL_KEYS
    by_prefix = run("rm", str(records.root), "--prefix", "pickle/")
    assert by_prefix.code == 2
    assert _keys_on_disk(records.root) == ALL_KEYS


def test_rm_with_yes_deletes_by_keys_and_by_prefix(run, records):
    result = run("rm", str(records.root), "pickle/one", "pickle/old", "--yes", "--json")
    assert result.code == 0
    assert result.json()["deleted"] == ["pickle/one", "pickle/old"]
    result = run("rm", str(records.root), "--prefix", "pickle/", "-y", "--json")
    assert result.json()["deleted"] == ["pickle/expired"]
    assert _keys_on_disk(records.root) == ["bad/flipped", "json/live", "literal/none"]


def test_rm_missing_key_fails_but_deletes_the_rest(run, records):
    result = run("rm", str(records.root), "pickle/one", "pickle/ghost", "--yes")
    assert result.code == 1
    assert result.err == f"resultkit: error: no record at key(s) 'pickle/ghost' in {records.root}\n"
    assert not (records.root / "pickle" / "one").exists()


def test_rm_usage_errors(run, records):
    assert run("rm", str(records.root)).code == 2
    both = run("rm", str(records.root), "pickle/one", "--prefix", "pickle/")
    assert both.code == 2 and "not both" in both.err
    assert _keys_on_disk(records.root) == ALL_KEYS


# -- gc -------------------------------------------------------------------------------


def _temp_file(root, name, age_seconds):
    path = root / "pickle" / name
    path.write_bytes(b"partial write")
    past = time.time() - age_seconds
    os.utime(path, (past, past))
    return path


def test_gc_dry_run_lists_and_gc_removes_expired_records_and_stale_temp_files(run, records):
    stale = _temp_file(records.root, ".rk-tmp-deadwriter", age_seconds=2 * 3600)
    fresh = _temp_file(records.root, ".rk-tmp-activewriter", age_seconds=60)
    dry = run("gc", str(records.root), "--dry-run", "--json")
    assert dry.code == 0, dry.err
    report = dry.json()
    assert report["dry_run"] is True
    assert [r["key"] for r in report["expired_records"]] == ["pickle/expired"]
    assert [t["path"] for t in report["temp_files"]] == ["pickle/.rk-tmp-deadwriter"]
    assert (records.root / "pickle" / "expired").exists() and stale.exists()

    done = run("gc", str(records.root))
    assert done.code == 0
    assert "removed 1 expired record(s)" in done.out and "1 temporary file(s)" in done.out
    assert not (records.root / "pickle" / "expired").exists()
    assert not stale.exists()
    assert fresh.exists()  # a writer may still be working on it
    assert _keys_on_disk(records.root) == [k for k in ALL_KEYS if k != "pickle/expired"]
    again = run("gc", str(records.root), "--json").json()
    assert again["expired_records"] == [] and again["temp_files"] == []


def test_gc_keeps_a_record_rewritten_with_a_fresh_expiry(run, records, tmp_path):
    # What gc re-checks before deleting: the header on storage now, not the one it scanned.
    records.store.write("pickle/expired", "fresh", expiration=timedelta(days=1))
    result = run("gc", str(records.root), "--json")
    assert result.json()["expired_records"] == []
    assert records.store.read("pickle/expired").result == "fresh"


# -- verify ---------------------------------------------------------------------------


def test_verify_exits_1_and_lists_corrupt_records(run, records):
    truncated = records.root / "pickle" / "old"
    truncated.write_bytes(truncated.read_bytes()[:-5])
    result = run("verify", str(records.root), "--json")
    assert result.code == 1
    report = result.json()
    assert report["checked"] == 6 and report["ok"] == 4
    problems = {p["key"]: p["problem"] for p in report["problems"]}
    assert sorted(problems) == ["bad/flipped", "pickle/old"]
    assert "checksum" in problems["bad/flipped"]
    assert "payload is" in problems["pickle/old"]
    table = run("verify", str(records.root))
    assert table.code == 1
    assert "bad/flipped" in table.out and "4 ok, 2 with problems" in table.out


def test_verify_passes_once_corrupt_records_are_gone(run, records):
    assert run("rm", str(records.root), "bad/flipped").code == 0
    result = run("verify", str(records.root))
    assert result.code == 0, result.out
    assert "5 ok, 0 with problems" in result.out


def test_verify_checks_the_header_checksum(run, records):
    flip_byte(records.root / "json" / "live", offset_from_end=80)  # JSON payload is short
    problems = run("verify", str(records.root), "--json").json()["problems"]
    assert {p["key"] for p in problems} == {"bad/flipped", "json/live"}


class _Tripwire:
    """Unpickling this creates a marker file: proof that a payload was deserialized."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_verify_checks_signatures_and_never_unpickles(run, tmp_path, monkeypatch):
    root = tmp_path / "signed"
    marker = tmp_path / "unpickled"
    ResultStore(root, signing_key="team-secret").write("good", {"ok": True})
    ResultStore(root).write("unsigned", _Tripwire(str(marker)))
    ResultStore(root, signing_key="other-secret").write("wrong-key", _Tripwire(str(marker)))

    unchecked = run("verify", str(root), "--json")
    assert unchecked.code == 0, unchecked.out  # no key: checksums only, all intact
    assert unchecked.json()["signatures_checked"] is False
    assert unchecked.json()["signatures"] == {"unchecked": 2, "unsigned": 1}

    monkeypatch.setenv("RESULTKIT_SIGNING_KEY", "team-secret")
    checked = run("verify", str(root), "--json")
    assert checked.code == 1
    problems = {p["key"]: p["problem"] for p in checked.json()["problems"]}
    assert sorted(problems) == ["unsigned", "wrong-key"]
    assert "unsigned" in problems["unsigned"]
    assert "invalid signature" in problems["wrong-key"]
    assert checked.json()["signatures"] == {"valid": 1}
    assert not marker.exists()
    # The trap is real: a store that does load the payload trips it.
    monkeypatch.delenv("RESULTKIT_SIGNING_KEY")
    ResultStore(root).read("unsigned")
    assert marker.exists()


# -- stats ----------------------------------------------------------------------------


def test_stats_counts_records_and_bytes_by_serializer_and_state(run, records):
    result = run("stats", str(records.root), "--json")
    assert result.code == 0
    stats = result.json()
    size = {key: (records.root / key).stat().st_size for key in ALL_KEYS}
    assert stats["total"] == {"records": 6, "bytes": sum(size.values())}
    assert stats["by_serializer"] == {
        "json": {"records": 1, "bytes": size["json/live"]},
        "literal": {"records": 1, "bytes": size["literal/none"]},
        "pickle": {"records": 4, "bytes": sum(size[k] for k in ALL_KEYS if k.startswith(("pickle", "bad")))},
    }
    assert stats["by_state"] == {
        "live": {"records": 1, "bytes": size["json/live"]},
        "expired": {"records": 1, "bytes": size["pickle/expired"]},
        "no-expiry": {"records": 4, "bytes": size["pickle/one"] + size["pickle/old"]
                      + size["literal/none"] + size["bad/flipped"]},
    }
    table = run("stats", str(records.root))
    assert "by serializer" in table.out and "6 record(s)" in table.out


def test_gc_sweeps_temp_files_of_an_fsspec_file_storage(run, records):
    from resultkit.storage import FsspecStorage

    stale = _temp_file(records.root, ".rk-tmp-crashed", age_seconds=3 * 3600)
    slug = FsspecStorage(f"file://{records.root}").save("files")
    result = run("gc", slug, "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert [t["path"] for t in report["temp_files"]] == ["pickle/.rk-tmp-crashed"]
    assert [r["key"] for r in report["expired_records"]] == ["pickle/expired"]
    assert not stale.exists()
