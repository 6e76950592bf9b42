"""rs: Ray-distributed surrogate and diffusion models of phase-field solidification."""

__version__ = "0.1.0"
