"""`handsoff rollback`: start the pipeline's rollback DAG through the REST API, after checking names locally.

Registered in ``handsoff.cli`` by importing this module. Exit codes are those of `handsoff trigger`
(``handsoff.trigger.TriggerExit``); a target, wave or stage the spec does not name is a usage error (2).
"""

from __future__ import annotations

import argparse
import getpass
import os
import uuid
from datetime import UTC, datetime

from handsoff.cli import SPECS_ARG, URL_ARG, USERNAME_ARG, UsageError, argument, command
from handsoff.rollback_request import Request, RollbackRequestError, choose, pipeline_layout
from handsoff.trigger import Credentials, TriggerError, TriggerExit, find_pipeline


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


@command(
    "rollback",
    "roll a pipeline's targets back to their previous version (or --to a commit that ran there), "
    "newest wave first, through its rollback DAG",
    argument("pipeline", metavar="PIPELINE", help="pipeline id"),
    argument("--target", action="append", metavar="T", help="a target (repeat for several)"),
    argument("--wave", metavar="W", help="every target of a wave (WAVE or STAGE.WAVE)"),
    argument("--stage", metavar="S", help="every target of a stage"),
    argument("--all", action="store_true", help="every target of the pipeline"),
    argument("--to", metavar="COMMIT", help="go back to this commit (it must have been deployed there)"),
    argument("--reason", required=True, metavar="TEXT", help="why (recorded in the ledger)"),
    URL_ARG,
    USERNAME_ARG,
    argument("--password", metavar="PASSWORD", help="prefer $HANDSOFF_AIRFLOW_PASSWORD: flags show in ps"),
    argument("--token", metavar="TOKEN", help="a JWT instead of a login (default: $HANDSOFF_AIRFLOW_TOKEN)"),
    SPECS_ARG,
)
def rollback_command(args: argparse.Namespace) -> int:
    """Validate names against the spec, trigger `<pipeline>__rollback`, print the run id."""
    from handsoff.cli_ops import _credentials, _fail, _specs_dir

    chosen = [bool(args.target), bool(args.wave), bool(args.stage), args.all]
    if sum(chosen) != 1:
        raise UsageError("give exactly one of --target, --wave, --stage, --all")
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    credentials = _credentials(args)
    try:
        pipeline = find_pipeline(args.pipeline, _specs_dir(args))
    except TriggerError as err:
        return _fail("rollback", str(err), err.code)
    conf = rollback_conf(args, _requested_by(credentials))
    try:
        choose(pipeline_layout(pipeline), Request.from_params(conf))
    except RollbackRequestError as err:
        return _fail("rollback", f"{pipeline.id}: {err}", TriggerExit.USAGE)
    return _trigger(pipeline.id, conf, credentials)


def _trigger(pipeline_id: str, conf: dict, credentials: Credentials) -> int:
    from handsoff.airflow_api import AirflowApi, AirflowApiError, AirflowAuthError, AirflowUnreachable
    from handsoff.cli_ops import _fail
    from handsoff.rollback_dag import rollback_dag_id

    dag_id = rollback_dag_id(pipeline_id)
    run_id = f"rollback-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        api = AirflowApi(credentials.url, token=credentials.token)
        if credentials.token is None and credentials.username is not None:
            api.login(credentials.username, credentials.password or "")
        api.trigger_dag_run(dag_id, run_id, conf)
        paused = api.is_paused(dag_id)
    except ValueError as err:
        return _fail("rollback", str(err), TriggerExit.USAGE)
    except AirflowAuthError as err:
        return _fail("rollback", str(err), TriggerExit.AUTH)
    except AirflowUnreachable as err:
        return _fail("rollback", str(err), TriggerExit.UNREACHABLE)
    except AirflowApiError as err:
        return _fail("rollback", str(err), TriggerExit.API)
    what = ", ".join(conf["targets"]) or conf["wave"] or conf["stage"] or "all targets"
    print(
        f"triggered {dag_id} run {run_id}: {conf['scope']} {what}"
        + (f" to {conf['to']}" if conf["to"] else "")
    )
    print(f"requested by {conf['requested_by']}: {conf['reason']}")
    if paused:
        print(f"note: {dag_id} is paused; the run stays queued until it is unpaused")
    return TriggerExit.OK
