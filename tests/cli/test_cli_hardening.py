"""The CLI on hardened records: moved records, malformed storage URLs, leftover multipart uploads."""

from __future__ import annotations

import os
import shutil

from resultkit.storage import LocalStorage


def test_ls_show_and_verify_flag_a_record_moved_to_another_key(run, records):
    shutil.copy(records.root / "pickle" / "one", records.root / "pickle" / "copied")
    rows = {row["key"]: row for row in run("ls", str(records.root), "--json").json()}
    assert rows["pickle/copied"]["state"] == "unreadable"
    assert "names key 'pickle/one'" in rows["pickle/copied"]["problem"]
    assert rows["pickle/one"]["state"] == "no-expiry"
    verdict = run("verify", str(records.root), "--json")
    assert verdict.code == 1
    problems = {p["key"]: p["problem"] for p in verdict.json()["problems"]}
    assert "names key 'pickle/one'" in problems["pickle/copied"]
    assert "pickle/one" not in problems


def test_gc_never_follows_links_to_old_temporary_files(run, tmp_path):
    base, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    storage = LocalStorage(base)
    storage.write("a/record", b"1")
    stale = outside / ".rk-tmp-old"
    stale.write_bytes(b"not ours")
    (base / "a" / ".rk-tmp-link").symlink_to(stale)
    os.utime(stale, (0, 0))
    result = run("gc", str(base), "--json")
    assert result.code == 0 and result.json()["temp_files"] == []
    assert stale.exists()
