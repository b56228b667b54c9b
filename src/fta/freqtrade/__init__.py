"""Everything that speaks freqtrade: client options, forced config, job bundle, markers, entry."""
