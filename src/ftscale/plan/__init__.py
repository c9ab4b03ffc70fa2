"""The study before it runs: the grid of conditions, Hub ladders, memory and resources per job."""
