"""The backup engine: project selection, one task per project, incremental runs."""
