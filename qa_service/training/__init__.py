"""Training what the answering path serves (the learned answer judge: qa_service.training.judge). The answering
modules never import this package (tests/test_architecture.py)."""
