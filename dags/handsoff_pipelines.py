"""Airflow DAG file: one DAG per valid handsoff pipeline spec under HANDSOFF_SPECS_DIR."""

from handsoff.factory.loader import load_dags

globals().update(load_dags())
