"""The registry service: workflow definitions, drafts and published versions."""
