"""How jobs run: the warm worker, `ftscale run`, ranks, a job's start and end, sealed outputs, faults."""
