"""``python -m llm_common_db`` runs the ``llm-common-db`` command line."""

from ._cli import app

app(prog_name="llm-common-db")
