"""The local lab cluster in podman containers, for rehearsal and tests."""
