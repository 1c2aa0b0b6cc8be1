"""Parser of ``runway users add|list|remove``: who may log in to Airflow, and with which role."""

from __future__ import annotations

from typing import Any

from pipeline_components.cli.commands.users import cmd_add, cmd_list, cmd_remove
from pipeline_components.cli.parsers.command import add_command
from pipeline_components.orchestration.auth_users import MIN_PASSWORD_LENGTH, ROLES, USERS_FILE_ENV

DESCRIPTION = f"""\
The users of Airflow under runway's production auth manager (pipeline_components.orchestration.auth):
a users file of names, roles and salted scrypt password hashes, mode 0600, no default user.

Roles, each with everything the ones before it may do:
  viewer     read DAGs, runs, task instances, logs, assets, pools; change nothing
  operator   trigger, clear and mark runs and task instances, pause DAGs, approve rollouts,
             promote and roll back in the model console
  admin      everything: connections, variables, Airflow's configuration, pools, deletions

  runway users add alice --role admin --generate    a random password, printed this once
  runway users add bob --role viewer                the password is asked for (or read from stdin)
  runway users list
  runway users remove bob                           bob's tokens are refused from the next request

The file is $RUNWAY_HOME/auth/users.json unless --users-file names another; Airflow's API server
reads the one that {USERS_FILE_ENV} names (and refuses to start without it)."""


def add_parsers(sub: Any) -> None:
    """Register ``users`` on the ``runway`` subparsers."""
    users = add_command(
        sub, "users", help="Airflow's users and roles (viewer, operator, admin)", description=DESCRIPTION
    )
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = add_command(actions, "add", help="add a user (or, with --replace, set a new role and password)", func=cmd_add)
    add.add_argument("name", help="the user name: letters, digits, '.', '_', '@', '-' (at most 64)")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do (see `runway users -h`)")
    add.add_argument(
        "--generate",
        action="store_true",
        help="generate a random password and print it once (else it is asked for, or read from stdin: "
        f"at least {MIN_PASSWORD_LENGTH} characters)",
    )
    add.add_argument("--replace", action="store_true", help="replace an existing user's role and password")
    listing = add_command(actions, "list", help="the users and their roles (no hash is shown)", func=cmd_list)
    remove = add_command(actions, "remove", help="remove a user (the last admin cannot be removed)", func=cmd_remove)
    remove.add_argument("name", help="the user to remove")
    for parser in (add, listing, remove):
        parser.add_argument(
            "--users-file", metavar="PATH", help="the users file (default $RUNWAY_HOME/auth/users.json)"
        )
