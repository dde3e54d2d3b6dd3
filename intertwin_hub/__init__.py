"""intertwin-hub: the shared JupyterHub of the interTwin Digital Twin Engine."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0.dev0"

__all__ = ["__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # the prebuilt lab extension ships inside this package (built from labextension/)
    return [{"src": "labextension", "dest": "@intertwin/hub"}]
