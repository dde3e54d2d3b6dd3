"""The local testbed: a real Kubernetes control plane, the real interLink virtual kubelet and
API, a local interLink plugin standing in for the sites' batch systems, and the hub.

Everything listens on 127.0.0.1 with free ports; every process is tracked by pid and logs into
one run folder. Nothing here ships in the product wheel.
"""
