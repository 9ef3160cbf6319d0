"""When analysisd.spec builds the validators of the models a template never holds.

Every spec model is built (its pydantic schema, validator and serializer) as its class
is defined, at import: the daemon's threads then never build one concurrently (pydantic's
`model_rebuild` is not thread-safe). Those only an AnalysisRun or a
ClusterAnalysisTemplate holds (a run's spec, TTL strategy and status records, the two
kinds themselves) may instead be built on first use (pydantic's `defer_build`), which
`analysisd lint` asks for before it imports analysisd.spec (analysisd.cli): linting an
AnalysisTemplate then builds 11 of the 21 models (~4 ms of its start-up, issue 21). The
models are the same either way; only when they are built differs.

Read once, as analysisd.spec is imported; setting it afterwards changes nothing.
"""

from __future__ import annotations

RUN_MODELS_ON_FIRST_USE = False
