"""The simulated host: hypervisor and its scheduler, partitions, VMBus, IOMMU, devices,
I/O paths, workloads and faults, built from a scenario's deployment plan
(:mod:`sim.model.host`). No file I/O, no pandas, no plotting here: a replication returns
plain records (:mod:`sim.model.records`)."""
