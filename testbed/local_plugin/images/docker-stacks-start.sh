#!/bin/sh
# Stand-in for start.sh of the Jupyter docker-stacks images (their ENTRYPOINT, after tini):
# the real one adjusts the user (NB_UID, NB_GID), runs the start-notebook.d and
# before-notebook.d hooks and then execs its arguments. This one sets what the real one would
# set and leaves a trace in $HOME, so a test sees that the entrypoint ran before the session.
export NB_USER="${NB_USER:-jovyan}"
export JUPYTER_DOCKER_STACKS_ENTRYPOINT=ran
{
  echo "start.sh ran for NB_USER=$NB_USER"
  echo "then exec: $*"
} > "$HOME/docker-stacks-start.txt"
exec "$@"
