"""`handsoff rollback`: start the pipeline's rollback DAG through the REST API, after checking names locally.

Exit codes are those of `handsoff trigger` (``handsoff.cli.common.TriggerExit``); a target, wave or stage
the spec does not name is a usage error (2).
"""

from __future__ import annotations

import argparse
import getpass
import os
import uuid
from datetime import UTC, datetime

from handsoff.cli.common import (
    Credentials,
    TriggerError,
    TriggerExit,
    credentials,
    fail,
    find_pipeline,
    specs_dir,
)
from handsoff.cli.registry import UsageError
from handsoff.factory.naming import rollback_dag_id
from handsoff.hooks.airflow_api import AirflowApi, AirflowApiError, AirflowAuthError, AirflowUnreachable
from handsoff.model.rollback import Request, RollbackRequestError, choose, pipeline_layout


def rollback_conf(args: argparse.Namespace, requested_by: str) -> dict:
    """The rollback DAG's params from the command line."""
    scope = "target" if args.target else "wave" if args.wave else "stage" if args.stage else "all"
    return {
        "scope": scope,
        "targets": list(args.target or []),
        "wave": args.wave,
        "stage": args.stage,
        "to": args.to,
        "reason": args.reason.strip(),
        "requested_by": requested_by,
    }


def _requested_by(credentials: Credentials) -> str:
    return credentials.username or os.environ.get("USER") or getpass.getuser()


def rollback_command(args: argparse.Namespace) -> int:
    """Validate names against the spec, trigger `<pipeline>__rollback`, print the run id."""
    chosen = [bool(args.target), bool(args.wave), bool(args.stage), args.all]
    if sum(chosen) != 1:
        raise UsageError("give exactly one of --target, --wave, --stage, --all")
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    login = credentials(args)
    try:
        pipeline = find_pipeline(args.pipeline, specs_dir(args))
    except TriggerError as err:
        return fail("rollback", str(err), err.code)
    conf = rollback_conf(args, _requested_by(login))
    try:
        choose(pipeline_layout(pipeline), Request.from_params(conf))
    except RollbackRequestError as err:
        return fail("rollback", f"{pipeline.id}: {err}", TriggerExit.USAGE)
    return _trigger(pipeline.id, conf, login)


def _trigger(pipeline_id: str, conf: dict, credentials: Credentials) -> int:
    dag_id = rollback_dag_id(pipeline_id)
    run_id = f"rollback-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        api = AirflowApi(credentials.url, token=credentials.token)
        if credentials.token is None and credentials.username is not None:
            api.login(credentials.username, credentials.password or "")
        api.trigger_dag_run(dag_id, run_id, conf)
        paused = api.is_paused(dag_id)
    except ValueError as err:
        return fail("rollback", str(err), TriggerExit.USAGE)
    except AirflowAuthError as err:
        return fail("rollback", str(err), TriggerExit.AUTH)
    except AirflowUnreachable as err:
        return fail("rollback", str(err), TriggerExit.UNREACHABLE)
    except AirflowApiError as err:
        return fail("rollback", str(err), TriggerExit.API)
    what = ", ".join(conf["targets"]) or conf["wave"] or conf["stage"] or "all targets"
    print(
        f"triggered {dag_id} run {run_id}: {conf['scope']} {what}"
        + (f" to {conf['to']}" if conf["to"] else "")
    )
    print(f"requested by {conf['requested_by']}: {conf['reason']}")
    if paused:
        print(f"note: {dag_id} is paused; the run stays queued until it is unpaused")
    return TriggerExit.OK
