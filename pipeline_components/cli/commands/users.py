"""``runway users add|list|remove``: the users file of runway's Airflow auth manager (``orchestration/auth.py``).

The file holds names, roles and salted scrypt keys, never a password (``orchestration/auth_users.py``); the API
server reads it on every request, so a change applies at once, no restart needed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from pipeline_components.cli.output import say
from pipeline_components.orchestration.auth_users import (
    USERS_FILE_ENV,
    UsersFileError,
    add_user,
    default_users_file,
    generate_password,
    read_users,
    remove_user,
)
from pipeline_components.settings import Settings


def users_file_of(args: argparse.Namespace, settings: Settings) -> Path:
    """``--users-file``, else ``$RUNWAY_HOME/auth/users.json``."""
    return Path(args.users_file).expanduser().absolute() if args.users_file else default_users_file(settings.home)


def read_new_password(name: str) -> str:
    """The new password: asked twice on a terminal, else the first line of standard input (for scripts)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise UsersFileError("the two passwords differ; nothing was changed")
    return first


def cmd_add(args: argparse.Namespace, settings: Settings) -> None:
    path = users_file_of(args, settings)
    password = generate_password() if args.generate else read_new_password(args.name)
    add_user(path, args.name, role=args.role, password=password, replace=args.replace)
    say(f"{'set' if args.replace else 'added'} {args.name} ({args.role}) in {path}")
    if args.generate:  # shown this once: the file keeps only its hash
        say(f"password for {args.name}: {password}")
    say(f"Airflow's API server reads this file when {USERS_FILE_ENV}={path} (runway's auth manager)")


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    path = users_file_of(args, settings)
    users = read_users(path)
    say(f"{len(users)} user(s) in {path}")
    for name, user in sorted(users.items()):
        say(f"  {name:<24} {user.role}")


def cmd_remove(args: argparse.Namespace, settings: Settings) -> None:
    path = users_file_of(args, settings)
    remove_user(path, args.name)
    say(f"removed {args.name} from {path}: their logins and tokens are refused from now on")
