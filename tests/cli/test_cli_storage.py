"""Which storage the CLI works on: saved blocks, slugs, the default storage, S3 via moto."""

from __future__ import annotations

import os
from datetime import timedelta

from resultkit.results.store import ResultStore
from resultkit.storage import S3Storage


def test_storage_save_then_commands_resolve_the_slug(run, records, resultkit_home):
    saved = run("storage", "save", "team", str(records.root))
    assert saved.code == 0, saved.err
    assert saved.out.startswith("saved local/team")
    assert run("storage", "ls", "--json").json() == [{
        "slug": "local/team", "location": str(records.root),
        "options": {"basepath": str(records.root), "fsync": False}, "problem": None,
    }]
    via_slug = run("ls", "local/team", "--json")
    via_path = run("ls", str(records.root), "--json")
    assert via_slug.code == 0
    assert [r["key"] for r in via_slug.json()] == [r["key"] for r in via_path.json()]
    assert run("stats", "local/team", "--json").json()["total"]["records"] == 6
    # the blocks file holds options only, readable by its owner alone
    assert (resultkit_home / "blocks.toml").stat().st_mode & 0o077 == 0


def test_storage_save_refuses_to_overwrite_or_store_secrets(run, tmp_path):
    assert run("storage", "save", "x", str(tmp_path / "a")).code == 0
    again = run("storage", "save", "x", str(tmp_path / "b"))
    assert again.code == 2 and "already exists" in again.err
    assert run("storage", "save", "x", str(tmp_path / "b"), "--overwrite").code == 0
    secret = run("storage", "save", "prod", "s3://bucket", "-o", "secret=hunter2")
    assert secret.code == 2
    assert "credential" in secret.err and secret.err.count("\n") == 1
    assert "hunter2" not in (tmp_path / "resultkit-home" / "blocks.toml").read_text()


def test_unknown_slug_is_a_one_line_error_naming_what_exists(run, tmp_path):
    run("storage", "save", "team", str(tmp_path / "a"))
    result = run("ls", "s3/nope")
    assert result.code == 2
    assert result.err.startswith("resultkit: error: 's3/nope' looks like a saved storage slug")
    assert "local/team" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_storage_rm_forgets_the_block_but_keeps_records(run, records):
    run("storage", "save", "team", str(records.root))
    removed = run("storage", "rm", "local/team")
    assert removed.code == 0
    assert run("storage", "ls", "--json").json() == []
    assert (records.root / "pickle" / "one").exists()
    again = run("storage", "rm", "local/team")
    assert again.code == 2 and "no saved storage block 'local/team'" in again.err


def test_omitted_storage_is_the_default_store(run, resultkit_home, monkeypatch, tmp_path):
    ResultStore().write("default/one", 42)
    rows = run("ls", "--json").json()
    assert [r["key"] for r in rows] == ["default/one"]
    assert (resultkit_home / "storage" / "default" / "one").exists()
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(other))
    ResultStore().write("moved/two", 43)
    assert [r["key"] for r in run("ls", "--json").json()] == ["moved/two"]
    assert run("stats", "--json").json()["storage"] == str(other)


def test_commands_on_s3_through_a_saved_block(run, s3_endpoint, s3_bucket):
    store = ResultStore(S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint,
                                  skip_instance_cache=True, use_listings_cache=False))
    store.write("a/live", {"x": 1}, expiration=timedelta(days=1))
    store.write("a/expired", {"x": 2}, expiration=timedelta(seconds=-1))
    store.write("b/plain", list(range(100)))
    saved = run("storage", "save", "moto", f"s3://{s3_bucket}/results",
                "-o", f"endpoint_url={s3_endpoint}", "-o", "use_listings_cache=false")
    assert saved.code == 0, saved.err
    assert saved.out.startswith("saved s3/moto")

    rows = {r["key"]: r for r in run("ls", "s3/moto", "--json").json()}
    assert sorted(rows) == ["a/expired", "a/live", "b/plain"]
    assert rows["a/expired"]["state"] == "expired" and rows["a/live"]["state"] == "live"
    assert run("verify", "s3/moto").code == 0
    stats = run("stats", "s3/moto", "--json").json()
    assert stats["total"]["records"] == 3
    gc = run("gc", "s3/moto", "--json")
    assert [r["key"] for r in gc.json()["expired_records"]] == ["a/expired"]
    assert not store.storage.exists("a/expired")
    assert run("rm", "s3/moto", "--prefix", "a/", "--yes").code == 0
    # the same store by URL plus options, without a saved block
    by_url = run("ls", f"s3://{s3_bucket}/results", "-o", f"endpoint_url={s3_endpoint}", "--json")
    assert by_url.code == 0, by_url.err
    assert [r["key"] for r in by_url.json()] == ["b/plain"]


def test_verify_finds_corruption_on_s3(run, s3_endpoint, s3_bucket):
    import boto3

    storage = S3Storage(s3_bucket, endpoint_url=s3_endpoint, skip_instance_cache=True,
                        use_listings_cache=False)
    ResultStore(storage).write("k", b"payload" * 100)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    body = bytearray(client.get_object(Bucket=s3_bucket, Key="k")["Body"].read())
    body[-3] ^= 0xFF
    client.put_object(Bucket=s3_bucket, Key="k", Body=bytes(body))
    result = run("verify", f"s3://{s3_bucket}", "-o", f"endpoint_url={s3_endpoint}", "--json")
    assert result.code == 1
    assert [p["key"] for p in result.json()["problems"]] == ["k"]


def test_option_errors(run, records):
    assert run("ls", str(records.root), "-o", "novalue").code == 2
    assert run("ls", "-o", "fsync=true").code == 2  # no STORAGE to apply it to
    typo = run("ls", str(records.root), "-o", "bogus=1")
    assert typo.code == 2 and "bogus" in typo.err
    run("storage", "save", "team", str(records.root))
    slug = run("ls", "local/team", "-o", "fsync=true")
    assert slug.code == 2 and "saved block" in slug.err
    assert os.path.exists(records.root)
    s3_typo = run("ls", "s3://bucket/prefix", "-o", "endpiont_url=http://127.0.0.1:1")
    assert s3_typo.code == 2
    assert "S3Storage does not take option(s) 'endpiont_url' (did you mean 'endpoint_url'?)" in s3_typo.err


def test_help_version_and_missing_command(run):
    helped = run("--help")
    assert helped.code == 0
    assert "usage: resultkit" in helped.out and "exit codes" in helped.out
    assert run("--version").out.startswith("resultkit ")
    missing = run("storage")
    assert missing.code == 2
    assert missing.err == "resultkit: error: missing COMMAND; see `resultkit storage --help`\n"
    assert run().code == 2
