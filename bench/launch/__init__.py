"""Where a benchmark run executes: in this process (:mod:`.planning`), a fresh process per repeat
(:mod:`.repeats`), or Ray tasks over a cluster (:mod:`.ray_executor`). Above training and measurement."""
