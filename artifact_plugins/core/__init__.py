"""The orchestrator-free core of artifact_plugins."""
