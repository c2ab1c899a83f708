"""What drives the model: a run of replications (:mod:`~sim.experiment.run`), a paired
comparison of paths (:mod:`~sim.experiment.compare`), sweeps (:mod:`~sim.experiment.study`),
the capacity search (:mod:`~sim.experiment.capacity`) and validation
(:mod:`~sim.experiment.validate`)."""
