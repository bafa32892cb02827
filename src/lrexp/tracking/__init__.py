"""MLflow tracking: run lifecycle and buffered metric logging."""
