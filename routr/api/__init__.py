"""The REST API (FastAPI), served on the SIP server's own loop; see ``routr.api.server``."""
