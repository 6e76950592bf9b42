"""Ray clusters: environment for every Ray process, Slurm templates, job submission."""
