"""Proving alerts through their own PromQL: an evaluator with Prometheus 2.x's semantics over synthetic series
(`evaluate`), and the choice of input series that put an alert's query just short of each level and then just
past it (`synthesize`). The generated promtool tests feed those inputs to the real rules, so a changed query
fails its tests."""
