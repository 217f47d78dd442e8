"""policyqa: qa_service stage."""
