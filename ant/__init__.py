"""ant: run and manage ML training jobs on Kubernetes StatefulSets."""

__version__ = "0.1.0"
