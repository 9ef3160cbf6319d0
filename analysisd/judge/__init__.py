"""Kayenta-style statistical judge (NetflixACAJudge): canary against baseline.

Modules: mannwhitney (R/Kayenta interval and estimate) and zeroin (R's root
finder), stats and transforms, classifier (one metric), scorer (groups,
weights, thresholds), config (Kayenta canary configs), judge (the pipeline),
metric (the `judge:` provider block of an AnalysisTemplate metric).
"""
