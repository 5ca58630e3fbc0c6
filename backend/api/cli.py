"""``fleetcare api``: serve the API, print its OpenAPI spec, manage users, keys and devices.

Mounted by the root CLI as ``app.add_typer(api_cli.app, name="api")``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetcare.cli.state import backend_settings, say, stderr_console, stdout_console

if TYPE_CHECKING:
    import psycopg

    from backend.settings import BackendSettings

app = typer.Typer(help="The HTTP API: serve it, its OpenAPI spec, users, keys, provisioning.")
users_app = typer.Typer(help="API users (admin, csm, field, viewer, provisioner).")
keys_app = typer.Typer(help="API keys: created here, shown once.")
provision_app = typer.Typer(help="Devices' broker credentials and the broker's configuration.")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(provision_app, name="provision")

_log = logging.getLogger("fleetcare.api")


def _require_migrated(database_url: str, timeout_s: float) -> None:
    from backend.storage.errors import MigrationError
    from backend.storage.migrator import migration_status

    pending = migration_status(database_url, timeout_s=timeout_s).pending
    if pending:
        raise MigrationError(
            f"the database lacks {len(pending)} migration(s) ({', '.join(pending)}): "
            "run `fleetcare db migrate` (or `fleetcare api serve --migrate`)"
        )


@contextmanager
def _database(settings: BackendSettings, *, migrate: bool = False) -> Iterator[str]:
    """The configured database URL, or an embedded PostgreSQL started for the command."""
    from backend.storage.migrator import apply_migrations
    from fleetcare.embedded.stack import ServiceStack

    if settings.database_url is not None:
        if migrate:
            apply_migrations(settings.database_url, dialect=settings.storage_dialect)
        else:
            _require_migrated(settings.database_url, settings.connect_timeout_s)
        yield settings.database_url
        return
    with ServiceStack(
        settings,
        services=("database",),
        announce=lambda line: say(stderr_console(), f"started {line}"),
    ) as stack:
        apply_migrations(stack.database_url, dialect=settings.storage_dialect)
        yield stack.database_url


@contextmanager
def _connection(ctx: typer.Context) -> Iterator[psycopg.Connection[Any]]:
    """One connection in a transaction (committed when the command succeeds)."""
    from backend.storage.connect import connect

    settings = backend_settings(ctx)
    with (
        _database(settings) as url,
        connect(url, settings.connect_timeout_s) as conn,
        conn.transaction(),
    ):
        yield conn


@app.command("openapi")
def openapi(
    indent: Annotated[int, typer.Option("--indent", min=0, max=8, help="JSON indentation")] = 2,
) -> None:
    """Print the OpenAPI spec (JSON) for client generators; needs no database."""
    from backend.api.spec import openapi_spec

    sys.stdout.write(json.dumps(openapi_spec(), indent=indent or None, sort_keys=False) + "\n")


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="default: api_host")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="default: api_port")
    ] = None,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="apply pending migrations first")
    ] = False,
) -> None:
    """Run the API with uvicorn until Ctrl-C."""
    import uvicorn

    from backend.api.app import create_app

    settings = backend_settings(ctx)
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO))
    with _database(settings, migrate=migrate) as url:
        api = create_app(settings.model_copy(update={"database_url": url}))
        uvicorn.run(
            api,
            host=host or settings.api_host,
            port=port or settings.api_port,
            log_level=settings.log_level.lower(),
        )


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="display name")],
    role: Annotated[str, typer.Option("--role", help="admin, csm, field, viewer or provisioner")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="field users: their region")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="field users: their team")] = None,
    with_key: Annotated[
        bool, typer.Option("--with-key", help="also create an API key and print it once")
    ] = False,
) -> None:
    """Create a user; prints its id (and with --with-key, a key shown only this once)."""
    from pydantic import ValidationError

    from backend.api.auth import ROLES, create_api_key, create_user
    from backend.api.routes.users import UserCreate

    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    try:  # the same rules as POST /users
        user = UserCreate(name=name, role=role, email=email, region=region, team=team)
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None
    with _connection(ctx) as conn:
        user_id = create_user(
            conn, user.name, user.role, email=user.email, region=user.region, team=user.team
        )
        key = create_api_key(conn, user_id, "cli") if with_key else None
    console = stdout_console()
    say(console, f"user {user_id} ({role})")
    if key is not None:
        say(console, f"API key (shown once): {key}")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="user id or e-mail")],
    label: Annotated[str | None, typer.Option("--label", help="what the key is for")] = None,
) -> None:
    """Create an API key for a user and print it (shown only this once)."""
    from backend.api.auth import create_api_key

    with _connection(ctx) as conn:
        if user.isdigit() and len(user) <= 18:
            row = conn.execute("SELECT id FROM users WHERE id = %s", (int(user),)).fetchone()
        else:
            row = conn.execute("SELECT id FROM users WHERE email = %s", (user,)).fetchone()
        if row is None:
            raise typer.BadParameter(f"no user {user!r}", param_hint="--user")
        key = create_api_key(conn, int(row[0]), label)
    say(stdout_console(), key)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="the key's prefix (fc_<prefix>_...)")],
) -> None:
    """Revoke a key: it answers 401 from now on."""
    with _connection(ctx) as conn:
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE prefix = %s"
            " RETURNING id",
            (prefix,),
        ).fetchone()
    if row is None:
        raise typer.BadParameter(f"no key with prefix {prefix!r}", param_hint="PREFIX")
    say(stdout_console(), f"revoked key {row[0]}")


@provision_app.command("device")
def provision_device(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(help="device id (MQTT username)")],
    model: Annotated[str, typer.Option("--model", help="device model name")],
    account_id: Annotated[int | None, typer.Option("--account", min=1)] = None,
    site_id: Annotated[int | None, typer.Option("--site", min=1)] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="gateway's device id")] = None,
) -> None:
    """Register a device and print its broker password (shown only this once)."""
    from backend.api.device_registry import DeviceRegistration, RegistrationError, register_device

    registration = DeviceRegistration(
        external_id=external_id,
        model=model,
        account_id=account_id,
        site_id=site_id,
        gateway_external_id=gateway,
    )
    try:
        with _connection(ctx) as conn:
            issued = register_device(conn, registration)
    except RegistrationError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = stdout_console()
    say(console, f"device {issued.device_id}: username {issued.username}")
    say(console, f"password (shown once): {issued.password}")


@provision_app.command("credentials")
def provision_credentials(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(help="device id (MQTT username)")],
) -> None:
    """Issue (or replace) a device's broker password and print it once."""
    from backend.api.device_registry import rotate_credentials

    with _connection(ctx) as conn:
        row = conn.execute(
            "SELECT id FROM devices WHERE external_id = %s", (external_id,)
        ).fetchone()
        if row is None:
            raise typer.BadParameter(f"no device {external_id!r}", param_hint="EXTERNAL_ID")
        try:
            issued = rotate_credentials(conn, int(row[0]))
        except LookupError as exc:
            raise typer.BadParameter(str(exc), param_hint="EXTERNAL_ID") from None
    say(stdout_console(), f"password for {issued.username} (shown once): {issued.password}")


@provision_app.command("service-account")
def provision_service_account(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="broker username of a backend service")],
) -> None:
    """Create a broker login for a backend service and print its password once."""
    from backend.api.device_registry import RegistrationError, create_service_account

    try:
        with _connection(ctx) as conn:
            password = create_service_account(conn, username)
    except RegistrationError as exc:
        raise typer.BadParameter(str(exc)) from None
    say(stdout_console(), f"password for {username} (shown once): {password}")


@provision_app.command("broker-config")
def provision_broker_config(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="directory for passwords and acl")
    ],
) -> None:
    """Write the mosquitto password file and ACL file; then reload mosquitto (SIGHUP)."""
    from backend.api.broker_config import build_broker_config, write_broker_config

    settings = backend_settings(ctx)
    with _connection(ctx) as conn:
        config = build_broker_config(conn, settings.topic_root)
    password_path, acl_path = write_broker_config(config, out)
    console = stdout_console()
    say(
        console,
        f"password_file {password_path}  ({config.devices} devices, "
        f"{config.service_accounts} service accounts)",
    )
    say(console, f"acl_file {acl_path}")
