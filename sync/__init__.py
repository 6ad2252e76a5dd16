"""The orchestrator: the only app that knows both Commerce and Fusion. One module per flow in `flows/`, the relay,
the Celery tasks, Test connection, replay and ignore, and the admin screens that act on flows."""
