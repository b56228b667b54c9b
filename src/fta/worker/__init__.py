"""Worker: claims jobs from Postgres and runs them through the container runtime."""
