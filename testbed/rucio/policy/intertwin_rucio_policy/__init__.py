"""The testbed Rucio's policy package (loaded via RUCIO_POLICY_PACKAGE by the server and the
daemons, never by clients): Rucio's ``generic`` policy, plus rule owners may delete their own
rules and extend them, as on the production DataLake (generic lets only root do either)."""

SUPPORTED_VERSION = [">=41,<42"]
