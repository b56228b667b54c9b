"""fta: hosted, sandboxed Freqtrade for paying clients."""
