# The Airflow image of docker-compose.yaml: apache/airflow 3.3.2 with the handsoff provider installed.
#
#   docker-compose build            (or: docker build -t handsoff-airflow:3.3.2 .)
#
# Python 3.11, like the virtualenv constraints.txt was made in: the same pinned set as CI.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# git checks commits out (source, build, tests, deploys); make runs the example service's steps.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends git make \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

# The package and the constraints it is tested with. `scale` adds the Celery provider, psycopg2 and
# s3fs (the S3 artifact store); coverage is for the example greeter build's coverage gate.
COPY --chown=airflow:0 pyproject.toml README.md constraints.txt /opt/handsoff/
COPY --chown=airflow:0 provider /opt/handsoff/provider
RUN pip install --no-cache-dir -c /opt/handsoff/constraints.txt "/opt/handsoff[scale]" coverage \
    && python -c "import handsoff, airflow.providers.celery" \
    && airflow version
