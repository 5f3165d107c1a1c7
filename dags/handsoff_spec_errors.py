"""Airflow DAG file that defines no DAG: it raises one import error listing every broken pipeline spec.

Kept apart from handsoff_pipelines.py because Airflow drops every DAG of a file that raises.
"""

from handsoff.factory.loader import raise_spec_errors

raise_spec_errors()
