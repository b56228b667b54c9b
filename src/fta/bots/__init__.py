"""Long-running dry-run trading bots."""
