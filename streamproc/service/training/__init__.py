"""Where the worker's retrain agent sends a training job and where it keeps versions.

- :mod:`~streamproc.service.training.trainers`: a local command or a webhook;
- :mod:`~streamproc.service.training.orchestrators`: Apache Airflow and Kubeflow Pipelines runs;
- :mod:`~streamproc.service.training.registries`: the registry chosen by ``STREAMPROC_REGISTRY``;
- :mod:`~streamproc.service.training.mlflow_registry`: versions in an MLflow model registry.
"""
