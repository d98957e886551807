"""Where a study lives: a SQLite file in the tune folder (nothing to start), or a database server
several workers share (`--storage postgresql://user@host:port/db`).

The password of a server never travels in a string: not in the URL (refused there: it would land in
shell history, logs and the tune folder), but read from `COMPRESS_STORAGE_PASSWORD` or a file the
user names, and handed to the driver as a connection argument. Workers send heartbeats; a trial
whose worker stopped beating (killed, its machine gone) is marked failed by the next worker to
start a trial, and retried once with the same parameters.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.core.errors import UserError

PASSWORD_VARIABLE = "COMPRESS_STORAGE_PASSWORD"
CREATE_ATTEMPTS = 5  # workers started together race to create the tables; the losers wait and use them
RETRIES = 1  # a trial whose worker died is run once more, by whichever worker is next


def redacted(url: str) -> str:
    """The URL as it may be printed: never a password (none is allowed in it anyway)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  an unparsable URL: show its scheme only
        return url.split(":", 1)[0] + "://…"


def open_storage(url: str, password_file: Path | None = None, heartbeat: float = 10.0):
    """An Optuna storage for `url`: SQLite as given; a server with its password from the environment
    (or `password_file`), heartbeats every `heartbeat` seconds and a failed-trial retry."""
    import optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"--storage: {redacted(url)} is not a database URL (e.g. postgresql://tune@db.example:5432/studies)") from None
    if parsed.password is not None:
        raise UserError(f"--storage: the URL holds a password; give the URL without it and the password in {PASSWORD_VARIABLE} "
                        "(or --storage-password-file FILE), so it lands in no history, log or tune folder")
    engine_kwargs = {}
    if not parsed.drivername.startswith("sqlite"):
        password = password_file.read_text().strip() if password_file else os.environ.get(PASSWORD_VARIABLE)
        engine_kwargs = {"connect_args": {"password": password}} if password else {}
        engine_kwargs["pool_pre_ping"] = True
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=max(1, int(heartbeat)), grace_period=max(3, int(3 * heartbeat)),
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES),
            )
        except IntegrityError:  # another worker, started at the same moment, is creating the study's tables: use them once made
            time.sleep(1 + attempt)
        except (SQLAlchemyError, ImportError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"--storage: cannot open the study storage {redacted(url)}: {first}") from None
    raise UserError(f"--storage: the tables of {redacted(url)} could not be created: other workers kept creating them; start this one again")
