"""policyqa: eval stage."""
