"""The local interLink plugin: a FAKE of a site's batch system (the role Slurm or ARC-CE plays
behind a real interLink plugin), for the testbed only.

It speaks the real interLink plugin REST API (``/create``, ``/delete``, ``/status``,
``/getLogs``, as interLink 0.5.2-pre2 sends them), so the real interLink API server and
virtual kubelet talk to it exactly as they talk to the Slurm plugin. Behind the API nothing
is real: there is no scheduler, no container runtime, no image pull. Each pod becomes a "job"
with a site-style numeric job id, optionally held in an emulated queue for a few seconds, and
each container's ``command`` + ``args`` run as local processes of this machine (init
containers first, one after another), with the pod's ConfigMaps, Secrets and projected
volumes written as files, fake GPU indices, and two stand-ins for container isolation: mount
paths re-rooted under a per-pod folder, and the wildcard address 0.0.0.0 rewritten to the
pod's own IP (see :mod:`testbed.local_plugin.runner`).

With ``--slurm-conf`` the queue is not emulated: each pod is a job of a real Slurm cluster and
its containers run as that job's steps (:mod:`testbed.local_plugin.slurm`).

Run: ``python -m testbed.local_plugin --host 127.0.0.1 --port P --root DIR --site NAME
[--queue-seconds S] [--gpus N] [--slurm-conf FILE]``.
"""
