"""The kubectl-compatible verbs ``cli/main.py`` registers."""

from __future__ import annotations

from jobplane.cli.dashboard_cmd import dashboard_cmd
from jobplane.cli.get_cmd import describe_cmd, get_cmd
from jobplane.cli.history_cmd import history_cmd
from jobplane.cli.logs_cmd import logs_cmd, wait_cmd
from jobplane.cli.mutate_cmd import apply_cmd, create_cmd, delete_cmd
from jobplane.cli.run_cmd import run_cmd

COMMANDS = [apply_cmd, get_cmd, describe_cmd, delete_cmd, logs_cmd, wait_cmd, create_cmd, run_cmd, history_cmd, dashboard_cmd]
