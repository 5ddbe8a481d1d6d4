"""Fixtures for model endpoints (the local llama.cpp server, the fault-injecting upstream)."""
