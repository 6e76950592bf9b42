"""Models: backbone, diffusion, loss and region-selector registries, all chosen by config descriptors."""
