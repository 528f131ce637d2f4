"""`yibao …` run inside the test's process (typer's CliRunner), answered as `subprocess.run` answers: the exit status,
stdout and stderr — with the traceback on stderr when the command raised, as a process prints it — under the given
environment, working directory and the umask `yibao.cli.main` sets. A `yibao` process costs 0.3–1 s of start-up on a
loaded 2-core machine, this a few milliseconds; the entry point itself stays tested by the tests that keep a real
process (tests/cli/test_quote_cli.py, test_serve_cli.py, test_sandbox_cli.py, a refusal of each job command, `yibao
reconcile` in tests/services/reconciliation)."""

from __future__ import annotations

import os
import subprocess
import traceback
from collections.abc import Mapping
from pathlib import Path


def yibao(*args: str | Path, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
          input: str | None = None) -> subprocess.CompletedProcess:
    """``env`` is the whole environment, as for `subprocess.run` (default: this one); every change the command makes to
    the environment, the working directory or the umask is undone afterwards."""
    from typer.testing import CliRunner

    from yibao.cli import app

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_mask = os.umask(0o077)  # as main() does
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(app, [str(a) for a in args], input=input, prog_name="yibao")
    finally:
        os.umask(saved_mask)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # begins "Traceback (most recent call last):"
    return subprocess.CompletedProcess(["yibao", *map(str, args)], result.exit_code, result.stdout, stderr)
