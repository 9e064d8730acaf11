"""The composition root: configuration, logging, signals, start and graceful stop."""
