"""The CLI as users run it: `python -m resultkit` in a subprocess, on pipes and on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import orjson

from resultkit.results.store import ResultStore


def _cli(*argv, env=None, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, "-m", "resultkit", *argv], capture_output=True,
                          env=env, stdin=stdin, timeout=120)


def test_python_m_resultkit_verify_exit_codes_and_json(records):
    result = _cli("verify", str(records.root), "--json", env=os.environ.copy())
    assert result.returncode == 1
    report = orjson.loads(result.stdout)
    assert [p["key"] for p in report["problems"]] == ["bad/flipped"]
    assert result.stderr == b""
    listing = _cli("ls", str(records.root), "--json", env=os.environ.copy())
    assert listing.returncode == 0
    assert len(orjson.loads(listing.stdout)) == 6


def test_errors_are_one_line_without_traceback(tmp_path):
    result = _cli("show", str(tmp_path / "nowhere"), "k", env=os.environ.copy())
    assert result.returncode == 1
    assert result.stderr == f"resultkit: error: no record at key 'k' in {tmp_path / 'nowhere'}; run `resultkit ls` to see the keys\n".encode()
    usage = _cli("frobnicate", env=os.environ.copy())
    assert usage.returncode == 2
    lines = usage.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resultkit: error: argument COMMAND: invalid choice")


def test_rm_refuses_on_a_pipe_without_yes(records):
    result = _cli("rm", str(records.root), "--prefix", "pickle/", env=os.environ.copy(),
                  stdin=subprocess.PIPE)
    assert result.returncode == 2
    assert b"pass --yes" in result.stderr
    assert (records.root / "pickle" / "one").exists()


def _many_records(root, count):
    store = ResultStore(root)
    store.write("seed", 0)
    data = (root / "seed").read_bytes()
    for i in range(count):
        (root / f"r{i:04d}").write_bytes(data)


def test_long_scans_show_progress_on_a_terminal_only(tmp_path):
    root = tmp_path / "many"
    _many_records(root, 400)
    on_pipe = _cli("ls", str(root), "--json", env=os.environ.copy())
    assert on_pipe.returncode == 0
    assert on_pipe.stderr == b""  # nothing on a pipe
    assert len(orjson.loads(on_pipe.stdout)) == 401

    # stderr on a pseudo-terminal: the progress bar goes there, stdout stays pure JSON
    # (stdout goes to a file: a pipe nobody drains while we read the terminal would block it).
    leader, follower = pty.openpty()
    out_path = tmp_path / "stdout.json"
    try:
        with open(out_path, "wb") as out_file:
            proc = subprocess.Popen([sys.executable, "-m", "resultkit", "ls", str(root), "--json"],
                                    stdout=out_file, stderr=follower, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "TERM": "xterm", "COLUMNS": "100"})
        os.close(follower)
        follower = -1
        terminal = bytearray()
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            assert ready, "no output on the terminal for 120 s"
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child exited and closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        assert proc.wait(timeout=120) == 0
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert len(orjson.loads(out_path.read_bytes())) == 401
    assert b"reading headers" in terminal


def _run_on_terminal(argv, answer, tmp_path):
    """Run the CLI with stdin and stderr on a pseudo-terminal, typing ``answer`` at the prompt."""
    leader, follower = pty.openpty()
    out_path = tmp_path / "stdout.txt"
    seen = bytearray()
    try:
        with open(out_path, "wb") as out_file:
            proc = subprocess.Popen([sys.executable, "-m", "resultkit", *argv], stdout=out_file,
                                    stderr=follower, stdin=follower,
                                    env={**os.environ, "TERM": "xterm", "COLUMNS": "100"})
        os.close(follower)
        follower = -1
        answered = False
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            assert ready, f"no output on the terminal for 120 s; saw {bytes(seen)!r}"
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"[y/n]" in seen:
                os.write(leader, answer)
                answered = True
        code = proc.wait(timeout=120)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return code, bytes(seen), out_path.read_text()


def test_rm_asks_on_a_terminal(records, tmp_path):
    code, terminal, _ = _run_on_terminal(["rm", str(records.root), "--prefix", "pickle/"],
                                         b"n\n", tmp_path)
    assert b"Delete 3 records from" in terminal
    assert code == 1
    assert (records.root / "pickle" / "one").exists()
    code, _, out = _run_on_terminal(["rm", str(records.root), "--prefix", "pickle/"], b"y\n", tmp_path)
    assert code == 0
    assert "deleted 3 record(s)" in out
    assert not (records.root / "pickle").exists() or not any((records.root / "pickle").iterdir())
