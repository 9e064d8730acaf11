"""rctl: the command-line client of routr's REST API."""
