"""`python -m servers`: the registry listing and the run command's one-line failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from loadtests.processes import LOOPBACK, free_port, python_module_argv
from servers.variants import VARIANTS


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    full_env.update(env or {})
    return subprocess.run(
        python_module_argv("servers", *args), capture_output=True, text=True, timeout=timeout, env=full_env
    )


def test_list_table_and_json() -> None:
    table = _run("list")
    assert table.returncode == 0
    for v in VARIANTS:
        assert v.name in table.stdout
    data = json.loads(_run("list", "--json").stdout)
    assert [d["name"] for d in data] == [v.name for v in VARIANTS]
    assert {
        "framework",
        "server",
        "worker_class",
        "workers",
        "threads",
        "connections",
        "predicted_ceiling",
    } <= set(data[0])


def test_unknown_variant_is_one_line() -> None:
    result = _run("run", "flask-turbo", "--port", str(free_port()))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown variant 'flask-turbo'" in lines[0] and "fastapi-async" in lines[0]


def test_busy_port_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = _run("run", "fastapi-async", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on {LOOPBACK} is in use; choose another with --port"
    ]


def test_bad_setting_names_the_key() -> None:
    result = _run("run", "flask-sync", "--port", str(free_port()), env={"BENCH_RATE_LIMIT": "lots"})
    assert result.returncode == 2
    assert "BENCH_RATE_LIMIT" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_app_that_fails_to_boot_is_named(tmp_path: Path) -> None:
    # A broken module shadowing a dependency: the server dies on import, the CLI says why in its last line.
    (tmp_path / "flask_sock.py").write_text("raise ImportError('flask_sock is broken on purpose')\n")
    result = _run(
        "run", "flask-sync", "--port", str(free_port()), env={"PYTHONPATH": str(tmp_path)}, timeout=90
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: variant flask-sync: the app failed to boot: ImportError"), last
    assert "flask_sock is broken on purpose" in last
