"""Batch cells (``%%offload``): the framing of what travels through a job's log and the runner
that executes a cell at a site. Standard library only, except the runner's cloudpickle (the
``lab`` extra), so the hub service can read frames without unpickling anything."""
