"""Fixtures' helpers shared by the unit and system tests: repos, specs, moto, Airflow processes."""
