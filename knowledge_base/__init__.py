"""policyqa: knowledge_base stage."""
