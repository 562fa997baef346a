"""The study pipeline: completion, jobs, delivery, scheduling and audit."""
