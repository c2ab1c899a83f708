"""Records → tidy tables (:mod:`~sim.results.tables`), what faults did
(:mod:`~sim.results.faults`), warnings (:mod:`~sim.results.diagnose`), results and their
store on disk (:mod:`~sim.results.result`, :mod:`~sim.results.store`)."""
