"""The asyncio loop that runs many AnalysisRuns (to be built: see issue 3)."""
