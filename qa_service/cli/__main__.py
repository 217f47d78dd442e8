"""`python -m qa_service.cli …` is `policyqa …`."""
from . import app

app()
