"""Analysis engine: pure assessment rules, the run state machine, the asyncio scheduler."""
