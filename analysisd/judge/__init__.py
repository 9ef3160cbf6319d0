"""Kayenta-style statistical judge (NetflixACAJudge): canary against baseline.

Modules: mannwhitney (R/Kayenta interval and estimate) and zeroin (R's root
finder), stats and transforms, classifier (one metric), scorer (groups,
weights, thresholds), config (Kayenta canary configs), judge (the pipeline),
explain (each metric's evidence and the sentence saying why), report (a
judgement as a self-contained HTML page), metric (the `judge:` provider block
of an AnalysisTemplate metric).
"""
