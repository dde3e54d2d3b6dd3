"""The ``intertwin`` JupyterHub-managed service: every user's workloads across the sites (REST
API in ``openapi.yaml``), the only holder of Kubernetes credentials."""
