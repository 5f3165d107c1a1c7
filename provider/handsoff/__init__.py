"""handsoff: safe, hands-off deployment pipelines for Apache Airflow, written as JSON specs."""

__version__ = "0.1.0"
